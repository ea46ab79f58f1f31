"""How the policy pack reads a TPU training pool built as GKE TPU slice node pools.

A ``gcp:container/nodePool:NodePool`` of a TPU machine type is read as any GKE node pool (its own
bounds, :mod:`gpufleet.clouds.gcp.readers`): its nodes are TPU VMs, so its chips are its nodes times the
chips per VM of its machine type (the catalog's row: 4 on ``ct5p-hightpu-4t``).

``training-fabric-complete`` for such a pool means one node pool per slice the run declares, each of the
requested shape (:mod:`gpufleet.clouds.gcp.gke_tpu`): the shape's host machine type, exactly the
shape's hosts (GKE makes a multi-host slice of the whole node pool: a node count cut by hand is a
different slice, or none; an autoscaled one scales between 0 and all of them), and for a multi-host shape ``placementPolicy {type: COMPACT, tpuTopology:
<the requested topology>}``. A missing or other topology, or more node pools than declared slices,
is a problem; a value unknown until apply is not verified (the rule fails closed on it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gpufleet.catalog import load_catalog
from gpufleet.clouds.gcp.gke import NODE_POOL
from gpufleet.clouds.gcp.gke_tpu import PLACEMENT_COMPACT
from gpufleet.policy.resources import NodeGroup, Pool, known, pick, unknown_at

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType, Topology


def is_gke_slice_pool(pool: Pool) -> bool:
    """True when the pool's node groups are GKE node pools (TPU slice node pools for a TPU row)."""
    return bool(pool.groups) and all(g.resource.type == NODE_POOL for g in pool.groups)


def _wanted(pool: Pool, row: InstanceType) -> tuple[Topology | None, int]:
    """The slice shape and the slices the pool's component records (the plan's ``topology``, ``slices``)."""
    recorded: Any = pick(pool.component.props, "pool") if pool.component else None
    topology = known(pick(recorded or {}, "topology"))
    slices = pick(recorded or {}, "slices") or 1
    return load_catalog().slice_shape(row.gpu, topology), int(slices)


def gke_slice_problems(pool: Pool, row: InstanceType) -> list[str]:
    """What a GKE TPU training pool's node pools lack: one per declared slice, each the requested shape."""
    shape, declared = _wanted(pool, row)
    if shape is None:
        return [f"its component records no {row.gpu} slice shape, so its node pools cannot be held to one"]
    problems: list[str] = []
    for g in pool.groups:
        problems += _slice_problems(pool, g, shape)
    if len(pool.groups) > declared:
        problems.append(f"{len(pool.groups)} TPU slice node pools, but the run declares {declared}: slices talk over "
                        "the data-centre network, not ICI, so a multi-slice run must declare `slices`")
    elif len(pool.groups) < declared:
        problems.append(f"{len(pool.groups)} TPU slice node pool(s) for the {declared} slices the run declares")
    return problems


def _slice_problems(pool: Pool, g: NodeGroup, shape: Topology) -> list[str]:
    """What one slice node pool lacks of ``shape``: its machine type, its hosts, its topology."""
    r, problems = g.resource, []
    if g.instance_type is not None and g.instance_type != shape.host_type:
        problems.append(f"node pool {g.name} runs {g.instance_type}, not the {shape.host_type} nodes a {shape.topology} "
                        f"{shape.accelerator} slice runs on")
    hosts = g.max_nodes if g.max_nodes is not None else g.count
    if hosts is not None and hosts != shape.vms:
        problems.append(f"node pool {g.name} holds {hosts} node(s), but a {shape.topology} slice has {shape.vms} "
                        "hosts: GKE makes a slice of the whole node pool")
    if not shape.single_host and g.min_nodes not in (None, 0, shape.vms):
        problems.append(f"node pool {g.name} may scale to {g.min_nodes} node(s): GKE adds or removes a multi-host "
                        f"slice only whole (0 or {shape.vms} nodes)")
    if shape.single_host or unknown_at(pool.unknown, r, "placementPolicy.type", "placementPolicy.tpuTopology"):
        return problems
    placement = pick(r.props, "placementPolicy") or {}
    topology = known(pick(placement, "tpuTopology"))
    compact = str(pick(placement, "type") or "").upper() == PLACEMENT_COMPACT
    if topology != shape.topology or not compact:
        have = (f"tpu_topology {topology}" if topology else "no tpu_topology") + ("" if compact else
                                                                                  " and no COMPACT placement")
        problems.append(f"node pool {g.name} has {have}, but the run asks for one {shape.topology} slice per node pool")
    return problems

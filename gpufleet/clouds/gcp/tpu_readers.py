"""How the policy pack reads Cloud TPU resources: slices as node groups, and what a slice lacks.

==================================================  ==============================================
resource                                            read
==================================================  ==============================================
``gcp:tpu/v2Vm:V2Vm``                               zone, acceleratorConfig.type / .topology, or
                                                    acceleratorType (``v5p-128``); schedulingConfig
                                                    .spot / .preemptible: a spot group
``gcp:tpu/v2QueuedResource:V2QueuedResource``       zone, tpu.nodeSpecs[].node.acceleratorType
==================================================  ==============================================

A slice's chips come from its shape (the catalog's ``tpu_topologies.csv``; an untabled topology: the
product of its dimensions); its VMs are those chips over the chips per VM of the pool's instance
type. A TPU slice has no autoscaler: its bounds are its size.

``training-fabric-complete`` for a TPU means one slice of the requested topology: a slice of another
shape, or more slices than the run declares (multi-slice only when declared, over the data-centre
network), is a problem; a shape unknown until apply is not verified (the rule fails closed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gpufleet.catalog import Topology, load_catalog
from gpufleet.clouds.gcp.tpu import ACCELERATOR_CONFIG_TYPE, QUEUED_RESOURCE
from gpufleet.policy.resources import NodeGroup, Pool, Resource, is_unknown, known, pick, unknown_at

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType

_GENERATION = {v: k for k, v in ACCELERATOR_CONFIG_TYPE.items()}


def _shape(generation: str | None, topology: str | None, accelerator_type: str | None) -> Topology | None:
    """The catalog shape a slice names by topology (with its generation) or by accelerator type."""
    catalog = load_catalog()
    named = catalog.slice_shape(generation, topology)
    return next((s for shapes in catalog.topologies.values() for s in shapes
                 if s is named or (accelerator_type and s.accelerator_type == accelerator_type)), None)


def slices_of(r: Resource) -> list[tuple[str | None, str | None, int | None]]:
    """(generation, topology, chips) of each slice ``r`` asks for (None where unknown or unnamed)."""
    if r.type == QUEUED_RESOURCE:
        specs = pick(pick(r.props, "tpu") or {}, "nodeSpecs") or []
        types = [known(pick(pick(s, "node") or {}, "acceleratorType")) for s in specs if isinstance(s, Mapping)]
        out: list[tuple[str | None, str | None, int | None]] = []
        for t in types:
            shape = _shape(None, None, t)
            out.append((shape.accelerator, shape.topology, shape.chips) if shape else (None, None, None))
        return out
    config = pick(r.props, "acceleratorConfig") or {}
    generation = _GENERATION.get(known(pick(config, "type")) or "")
    topology = known(pick(config, "topology"))
    shape = _shape(generation, topology, known(pick(r.props, "acceleratorType")))
    if shape is not None:
        return [(shape.accelerator, shape.topology, shape.chips)]
    if generation and topology and all(d.isdigit() for d in topology.split("x")):
        return [(generation, topology, math.prod(int(d) for d in topology.split("x")))]
    return [(generation, topology, None)]


def tpu_node_group(pool: Pool, r: Resource, cloud: str) -> NodeGroup:
    """A TPU node or queued resource as a fixed-size node group of its VMs."""
    zone = known(pick(r.props, "zone"))
    slices = slices_of(r)
    catalog = load_catalog()
    per_vm = pool.gpus_per_node
    itype = pool.instance_type
    gens = {gen for gen, _, _ in slices}
    if itype is None or itype not in catalog.instances or {catalog.instances[itype].gpu} != gens:
        shape = _shape(*slices[0][:2], None) if slices else None
        itype = shape.host_type if shape else None
        per_vm = catalog.instances[itype].gpus if itype else None
    chips = [c for _, _, c in slices]
    vms = None if not slices or None in chips or not per_vm else sum(int(c or 0) for c in chips) // per_vm
    scheduling = pick(r.props, "schedulingConfig")
    flags = [pick(scheduling, "spot"), pick(scheduling, "preemptible")] if isinstance(scheduling, Mapping) else []
    unread = is_unknown(scheduling) or any(is_unknown(f) for f in flags)
    return NodeGroup(resource=r, cloud=cloud, min_nodes=vms, max_nodes=vms, count=vms,
                     zones=(zone,) if zone else (), instance_type=itype,
                     spot_nodes=None if unread else 0, spot_group=any(f is True for f in flags))


def tpu_slice_problems(pool: Pool, row: InstanceType, tpu_types: tuple[str, ...]) -> list[str]:
    """What a TPU training pool's slices lack: the requested topology, or more slices than declared."""
    recorded: Any = pick(pool.component.props, "pool") if pool.component else None
    wanted, declared = known(pick(recorded or {}, "topology")), pick(recorded or {}, "slices") or 1
    problems: list[str] = []
    found = 0
    for g in pool.groups:
        if g.resource.type not in tpu_types:
            problems.append(f"node group {g.name} is not a TPU slice, so its {row.gpu} chips join no ICI")
            continue
        if unknown_at(pool.unknown, g.resource, "acceleratorConfig.topology", "acceleratorType",
                      "tpu.nodeSpecs"):
            continue
        for gen, topology, _ in slices_of(g.resource):
            found += 1
            if wanted and topology != wanted:
                problems.append(f"TPU slice {g.name} is {topology or 'of no known shape'}"
                                f"{f' ({gen})' if gen else ''}, but the run asks for one {wanted} slice")
    if found > int(declared):
        problems.append(f"{found} TPU slices, but the run declares {declared}: slices talk over the data-centre "
                        "network, not ICI, so a multi-slice run must declare `slices`")
    return problems

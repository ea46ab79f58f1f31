"""Cloud TPU slices on GCP: what the GCP backend builds for a pool whose chips are TPUs.

The facts (the TPU API's type names, software versions, capacity, why inference is fixed-size) are
in :mod:`gpufleet.clouds.gcp.tpu`; the plan gives the slice shape (``PoolPlan.topology``), the slices
and, for inference, the VMs per zone. This module only builds them:

* a training pool: one TPU node (``gcp.tpu.V2Vm``) per slice, its ``accelerator_config`` the
  generation's type and the plan's topology, every slice in the pool's zone on the site's system
  network (no external IPs), labelled with the pool's tags; ``slices > 1`` only when the run declares
  a multi-slice run, the slices then talking over the data-centre network. With
  ``capacity.type: flex_start`` the slices are one ``gcp.tpu.V2QueuedResource`` instead (provisioned
  together when capacity is available: best-effort, not a reservation); with ``reservation`` the
  nodes are created under the project's TPU reservation (``scheduling_config.reserved``);
* an inference pool: one single-host TPU VM (``V2Vm``, the plan's 2x2 / 2x4 topology) per node of
  ``nodes_by_zone``, a fixed size: TPU VMs have no autoscaler outside GKE. The plan's spot nodes of
  a zone (``spot_nodes_by_zone``) are Spot TPU VMs, ``scheduling_config.spot`` (the TPU API's
  ``SchedulingConfig.spot``, ``gcloud compute tpus tpu-vm create --spot``:
  https://cloud.google.com/tpu/docs/spot-compute); they draw on preemptible quota, which preflight
  checks apart from the on-demand VMs' (:mod:`gpufleet.clouds.gcp.tpu_quota`).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from components.base import ClusterBuild, InferencePoolArgs, PoolBuild, TrainingClusterArgs, TrainingTarget, child
from gpufleet.catalog import InstanceType, load_catalog
from gpufleet.clouds.gcp.tpu import ACCELERATOR_CONFIG_TYPE, RUNTIME_VERSION, slice_name
from gpufleet.plan import PoolPlan

__all__ = ["build_tpu_inference", "build_tpu_training"]


def _network(handles: dict[str, Any]) -> gcp.tpu.V2VmNetworkConfigArgs:
    system, subnet = handles["system"]
    return gcp.tpu.V2VmNetworkConfigArgs(network=system.id, subnetwork=subnet.id, enable_external_ips=False)


def _node(owner: Any, resource_name: str, node_name: str, pool: PoolPlan, row: InstanceType, zone: str,
          handles: dict[str, Any], *, spot: bool = False) -> gcp.tpu.V2Vm:
    """One TPU node of the pool's shape in ``zone``; ``spot``: a Spot TPU VM."""
    scheduling = (gcp.tpu.V2VmSchedulingConfigArgs(spot=True) if spot
                  else gcp.tpu.V2VmSchedulingConfigArgs(reserved=True) if pool.capacity_type == "reservation"
                  else None)
    return gcp.tpu.V2Vm(
        resource_name,
        name=node_name,
        zone=zone,
        runtime_version=RUNTIME_VERSION[row.gpu],
        accelerator_config=gcp.tpu.V2VmAcceleratorConfigArgs(type=ACCELERATOR_CONFIG_TYPE[row.gpu],
                                                             topology=str(pool.topology)),
        network_config=_network(handles),
        scheduling_config=scheduling,
        labels=dict(sorted(pool.tags.items())),
        metadata={"enable-oslogin": "TRUE"},
        opts=child(owner),
    )


def _queued(owner: Any, name: str, pool: PoolPlan, row: InstanceType, zone: str,
            handles: dict[str, Any]) -> gcp.tpu.V2QueuedResource:
    """Every slice of a flex-start run in one queued resource (the TPU API's accelerator type string)."""
    shape = load_catalog().slice_shape(row.gpu, pool.topology)
    assert shape is not None  # the plan sizes a TPU pool to a tabled slice shape
    system, subnet = handles["system"]
    specs = [
        gcp.tpu.V2QueuedResourceTpuNodeSpecArgs(
            parent=f"projects/{handles['project']}/locations/{zone}",
            node_id=slice_name(pool.name, i, pool.slices),
            node=gcp.tpu.V2QueuedResourceTpuNodeSpecNodeArgs(
                runtime_version=RUNTIME_VERSION[row.gpu],
                accelerator_type=shape.accelerator_type,
                network_config=gcp.tpu.V2QueuedResourceTpuNodeSpecNodeNetworkConfigArgs(
                    network=system.id, subnetwork=subnet.id, enable_external_ips=False),
                description=f"gpufleet {pool.name} slice {i + 1} of {pool.slices} ({pool.topology})",
            ),
        )
        for i in range(pool.slices)
    ]
    return gcp.tpu.V2QueuedResource(f"{name}-queued", name=pool.name, zone=zone,
                                    tpu=gcp.tpu.V2QueuedResourceTpuArgs(node_specs=specs), opts=child(owner))


def build_tpu_training(owner: Any, args: TrainingClusterArgs) -> ClusterBuild:
    """The pool's slices: V2Vm nodes (or one queued resource for flex-start) in its one zone."""
    pool, row, name, zone = TrainingTarget.of(owner, args)
    handles = args.network.handles
    ids: list[pulumi.Input[str]]
    if pool.capacity_type == "flex_start":
        ids = [_queued(owner, name, pool, row, zone, handles).id]
    else:
        ids = [_node(owner, f"{name}-slice-{i}" if pool.slices > 1 else f"{name}-slice",
                     slice_name(pool.name, i, pool.slices), pool, row, zone, handles).id
               for i in range(pool.slices)]
    # Every chip of a slice joins its ICI: the VMs' chips are the "interfaces" the fabric has.
    return ClusterBuild(node_group_ids=ids, placement_ids=[], fabric_interfaces_attached=row.fabric_interfaces)


def build_tpu_inference(owner: Any, args: InferencePoolArgs) -> PoolBuild:
    """One single-host TPU VM per planned node, in the zones the plan spreads them over: the zone's
    on-demand nodes, then its spot nodes as Spot TPU VMs (``<pool>-<zone>-spot-<i>``)."""
    pool = args.pool
    row = load_catalog().instance(pool.instance_type)
    name = owner.pulumi_resource_name
    vms: list[gcp.tpu.V2Vm] = []
    for zone, count in sorted(pool.nodes_by_zone.items()):
        suffix, spot = zone.rsplit("-", 1)[-1], min(pool.spot_nodes_by_zone.get(zone, 0), count)
        vms += [_node(owner, f"{name}-{zone}-{i}", f"{pool.name}-{suffix}-{i}", pool, row, zone, args.network.handles)
                for i in range(count - spot)]
        vms += [_node(owner, f"{name}-{zone}-spot-{i}", f"{pool.name}-{suffix}-spot-{i}", pool, row, zone,
                      args.network.handles, spot=True)
                for i in range(spot)]
    first: pulumi.Input[str] = vms[0].id if vms else ""
    spot_note = (f" ({pool.spot_nodes} of them Spot TPU VMs, which Google may reclaim at any time)"
                 if pool.spot_nodes else "")
    notes = [f"{len(vms)} TPU VMs of {pool.topology} ({row.gpu}){spot_note}, a fixed size: Cloud TPU VMs have no "
             "autoscaler outside GKE, so there is no autoscaler and no warm pool; scale by changing the plan"]
    return PoolBuild(node_group_id=first, autoscaler_id="", warm_nodes=0, notes=notes)

"""GKE TPU slice node pools: what the GKE backend builds for a pool whose chips are Cloud TPUs.

The facts and refusals are :mod:`gpufleet.clouds.gcp.gke_tpu`'s; the plan gives the slice shape
(``PoolPlan.topology``), the slices, the hosts and, for serving, the node pool's bounds. This module
only builds them, as ``gcp.container.NodePool`` resources of the site's cluster:

* training: one node pool per slice (``slices`` > 1 only when the run declares multi-slice), each of
  its slice's hosts (``nodes / slices``) in the pool's one zone, the TPU machine type, and for a
  multi-host slice ``placement_policy {type: COMPACT, tpu_topology: <the plan's topology>}``. A fixed
  ``node_count``; with ``capacity.type: flex_start``, queued provisioning from 0 to the whole slice
  (GKE admits a multi-host slice as one unit); with ``reservation``, the named reservation consumed;
* inference: one node pool of single-host slices (``nodes`` nodes at most, ``min_nodes`` at least, over
  its zones), autoscaled node by node; the KEDA ``ScaledObject`` (built by
  :func:`components.k8s.base.build_inference`) scales the Deployment between the plan's replica bounds.

No ``guest_accelerator`` and no NVIDIA driver: a TPU machine type brings its chips and GKE its TPU
runtime. Every node carries the TPU taint, the pool's labels and the TPU accelerator and topology labels
workloads select their slice by.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from components.base import InferencePoolArgs, TrainingClusterArgs, child
from components.k8s.base import KubeCluster, NodePoolBuild
from components.k8s.gke import inference_shape, node_config, training_shape
from gpufleet.catalog import load_catalog
from gpufleet.clouds.gcp import gke, gke_tpu
from gpufleet.clouds.gcp.profile import TRAINING_WAIT_MINUTES


def tpu_node_pools(owner: Any, args: TrainingClusterArgs | InferencePoolArgs, cluster: KubeCluster) -> NodePoolBuild:
    """The pool's TPU slice node pools (training: one per slice; inference: one autoscaled pool)."""
    pool, name = args.pool, owner.pulumi_resource_name
    row = load_catalog().instance(pool.instance_type)
    timeouts = pulumi.CustomTimeouts(create=f"{TRAINING_WAIT_MINUTES}m", update=f"{TRAINING_WAIT_MINUTES}m")
    common: dict[str, Any] = dict(cluster=cluster.id, location=cluster.handles["location"],
                                  project=cluster.handles.get("project"), node_locations=list(pool.zones),
                                  node_config=node_config(pool, row, gke_tpu.TPU_TAINT,
                                                          gke_tpu.boot_disk_type(row.instance_type),
                                                          node_labels=gke_tpu.node_labels(pool)))
    if pool.role != "training":
        shape = inference_shape(pool)
        node_pool = gcp.container.NodePool(
            f"{name}-nodes", name=gke.node_pool_name(pool.name), **common,
            opts=child(owner, ignore_changes=shape.pop("ignore"), custom_timeouts=timeouts), **shape)
        return NodePoolBuild(node_pool_ids=[node_pool.id], notes=[
            f"single-host {pool.topology} {row.gpu} slices ({row.instance_type}), {pool.min_nodes}-{pool.nodes} nodes "
            "autoscaled by GKE; KEDA scales the Deployment"])
    placement = (gcp.container.NodePoolPlacementPolicyArgs(type=gke_tpu.PLACEMENT_COMPACT, tpu_topology=pool.topology)
                 if gke_tpu.multi_host(pool) else None)
    ids: list[pulumi.Input[str]] = []
    for i, pool_name in enumerate(gke_tpu.slice_pools(pool)):
        resource = f"{name}-slice-{i}" if pool.slices > 1 else f"{name}-slice"
        shape = training_shape(pool, gke_tpu.hosts_per_slice(pool))  # GKE admits a queued multi-host slice whole
        node_pool = gcp.container.NodePool(resource, name=pool_name, placement_policy=placement, **common,
                                           opts=child(owner, ignore_changes=shape.pop("ignore"),
                                                      custom_timeouts=timeouts), **shape)
        ids.append(node_pool.id)
    notes = [f"{pool.slices} TPU slice node pool(s) of {pool.topology} ({row.gpu}), "
             f"{gke_tpu.hosts_per_slice(pool)} {row.instance_type} node(s) each"]
    if gke.queued(pool):
        notes.append("each slice comes through GKE queued provisioning (flex-start): admitted whole when capacity "
                     "is found, best effort, not a reservation")
    # Every chip of a slice joins its ICI: the nodes' chips are the "interfaces" the fabric has.
    return NodePoolBuild(node_pool_ids=ids, fabric_interfaces_attached=row.fabric_interfaces, notes=notes)

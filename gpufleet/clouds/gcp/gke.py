"""GKE as gpufleet knows it: node pool shapes, GPU accelerator types, multi-networking, placement, queued provisioning.

Pure: no Pulumi, no SDK. The GKE backend (``components/k8s/gke.py``) builds what this module describes,
the GCP reader reads it back, and :class:`~gpufleet.clouds.gcp.profile.GcpProfile` runs the named checks
here before anything is built. Every fact names the Google page or Cluster Toolkit blueprint it comes
from (read 2026-11):

* Node pools: ``guest_accelerator`` with the GPU driver installed by GKE (``gpu_driver_installation_config``),
  the ``nvidia.com/gpu=present:NoSchedule`` taint, autoscaling per zone or in total, ``node_locations``:
  https://cloud.google.com/kubernetes-engine/docs/how-to/gpus and Cluster Toolkit
  ``modules/compute/gke-node-pool/main.tf``.
* Accelerator type per machine family: https://cloud.google.com/compute/docs/gpus (the GPU machine types
  table) and Cluster Toolkit ``pkg/config/machine_mappings.json``.
* GPU NICs on GKE are *additional node networks*; a cluster using them has multi-networking on, which
  needs GKE Dataplane V2 (``ADVANCED_DATAPATH``), and one ``GKENetworkParamSet`` + ``Network`` object per
  additional network (``deviceMode: NetDevice`` for gVNIC, ``RDMA`` for RoCE):
  https://cloud.google.com/kubernetes-engine/docs/how-to/setup-multinetwork-support-for-pods and Cluster
  Toolkit ``modules/scheduler/gke-cluster/main.tf`` (``derived_enable_multi_networking``,
  ``templates/gke-network-paramset.yaml.tftpl``). A3 High attaches 4 GPU networks (GPUDirect-TCPX),
  A3 Mega 8 (GPUDirect-TCPXO), A3 Ultra and A4 one more gVNIC network plus 8 RDMA subnets of a RoCE VPC
  (``examples/gke-a3-highgpu``, ``gke-a3-megagpu``, ``gke-a3-ultragpu``, ``gke-a4``;
  ``gpu_direct.tf``: ``min_additional_networks`` 4 and 8).
* The NCCL network plugins are cluster software: GPUDirect-TCPX(O) needs the NCCL plugin installer and
  NRI device injector DaemonSets plus the RxDM sidecar in the workload
  (https://cloud.google.com/kubernetes-engine/docs/how-to/gpu-bandwidth-gpudirect-tcpx), which gpufleet
  does not install (the VM path's ``check_pool_fabric_enabled`` covers both); RDMA on A3 Ultra / A4 needs
  the NCCL gIB plugin, which a privileged DaemonSet copies onto each node (Cluster Toolkit
  ``examples/gke-a3-ultragpu/nccl-installer.yaml.tftpl``, ``modules/management/kubectl-apply`` ``gib``):
  gpufleet installs one per RDMA node pool (:data:`GIB_IMAGE`, :func:`gib_installer_name`).
* Compact placement of a GPU node pool: ``placement_policy {type: COMPACT, policy_name: <a HIGH_THROUGHPUT
  workload policy>}`` (Cluster Toolkit ``modules/compute/resource-policy`` output ``placement_policy``,
  ``examples/gke-a4x``), in a single-zone node pool; or the specific reservation's own placement.
* Queued provisioning (Dynamic Workload Scheduler flex-start): ``queued_provisioning.enabled`` with
  ``reservation_affinity: NO_RESERVATION``, total minimum 0, location policy ANY, no auto-repair, and no
  COMPACT placement on GPUs: https://cloud.google.com/kubernetes-engine/docs/how-to/provisioningrequest and
  Cluster Toolkit ``gke-node-pool/main.tf`` preconditions.
* Limits: at most 1,000 nodes per node pool per zone (https://cloud.google.com/kubernetes-engine/quotas);
  node pool names are at most 40 lowercase letters, digits and hyphens, from a letter
  (https://cloud.google.com/kubernetes-engine/docs/how-to/node-pools); a cluster id is
  ``projects/<project>/locations/<location>/clusters/<name>`` (the node pool's ``cluster`` argument).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gpufleet.clouds.base import PoolCheck, SiteCheck
from gpufleet.clouds.gcp.profile import (
    WORKLOAD_POLICY_FAMILIES,
    NicLayout,
    layout_for,
    machine_family,
)
from gpufleet.errors import Issue

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType
    from gpufleet.plan import PoolPlan
    from gpufleet.spec import SiteSpec

# --- resource type tokens ----------------------------------------------------------------------------

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
GIB_DAEMONSET = "kubernetes:apps/v1:DaemonSet"

# --- facts ---------------------------------------------------------------------------------------------

KUBERNETES = "kubernetes"
"""``PoolPlan.platform`` / ``PlatformSpec.kind`` of a pool that runs on a Kubernetes node pool."""

ACCELERATOR_TYPES: dict[str, str] = {
    "a2-highgpu": "nvidia-tesla-a100",
    "a2-ultragpu": "nvidia-a100-80gb",
    "a3-highgpu": "nvidia-h100-80gb",
    "a3-megagpu": "nvidia-h100-mega-80gb",
    "a3-ultragpu": "nvidia-h200-141gb",
    "a4-highgpu": "nvidia-b200",
    "g2-standard": "nvidia-l4",
}
"""The ``guest_accelerator`` type of each GPU machine family (also the ``cloud.google.com/gke-accelerator``
node label GKE sets)."""

GPU_DRIVER_VERSION = "LATEST"
"""GKE installs the latest driver of the node's GKE version (``DEFAULT`` may predate H200 / B200)."""

GPU_TAINT = ("nvidia.com/gpu", "present", "NO_SCHEDULE")
"""The taint GKE documents for GPU nodes (key, value, effect): only pods that tolerate it land there."""

NODES_PER_POOL_ZONE_MAX = 1000
"""Most nodes one node pool holds in one zone."""

NODE_POOL_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
"""A node pool's or a cluster's name (the same rule for both)."""
CLUSTER_ID = re.compile(r"^projects/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])/locations/(?P<location>[a-z0-9-]+)"
                        r"/clusters/(?P<name>[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)$")

DATAPATH_V2 = "ADVANCED_DATAPATH"
"""GKE Dataplane V2, which multi-networking needs."""
DEVICE_MODE_GVNIC = "NetDevice"
DEVICE_MODE_RDMA = "RDMA"
LOCATION_POLICY_TRAINING = "ANY"
"""Queued provisioning takes capacity where it is (Cluster Toolkit sets ANY for every node pool)."""
LOCATION_POLICY_INFERENCE = "BALANCED"
"""A serving pool spreads over its zones, as the VM path's regional MIG does."""
POD_RANGE_PREFIX = "/14"
SERVICE_RANGE_PREFIX = "/20"
"""Secondary ranges a created cluster asks GKE to pick and create (VPC-native, GKE-managed ranges);
Cluster Toolkit's GKE blueprints use a /14 for pods and a /20 for services."""


def accelerator_type(machine_type: str) -> str | None:
    """The GKE accelerator type of ``machine_type`` (None for a family gpufleet knows none of)."""
    return ACCELERATOR_TYPES.get(machine_family(machine_type))


def additional_networks(layout: NicLayout) -> int:
    """Additional node networks a node of ``layout`` attaches: every NIC but the first host gVNIC."""
    return layout.host_nics - 1 + layout.gpu_nics


def wanted_networks(row: InstanceType) -> int:
    """Additional node networks a training node pool of ``row`` needs for its fabric (0: none)."""
    layout = layout_for(row.instance_type)
    return additional_networks(layout) if layout is not None and row.fabric != "none" else 0


def node_pool_name(pool_name: str) -> str:
    """The GKE node pool name of a pool: its own name, or shortened to 40 characters with a digest."""
    if NODE_POOL_NAME.fullmatch(pool_name):
        return pool_name
    digest = hashlib.sha256(pool_name.encode()).hexdigest()[:6]
    stem = re.sub(r"[^a-z0-9-]", "-", pool_name.lower())[:32].strip("-") or "pool"
    return f"{stem if stem[0].isalpha() else 'p' + stem[:31]}-{digest}"


def queued(pool: PoolPlan) -> bool:
    """True when the node pool obtains its nodes through queued provisioning (``capacity.type: flex_start``)."""
    return pool.capacity_type == "flex_start"


def nodes_per_zone(pool: PoolPlan) -> int:
    """The most nodes the pool puts in one zone at full size."""
    return max(pool.nodes_by_zone.values(), default=0) or math.ceil(pool.nodes / max(len(pool.zones), 1))


GIB_IMAGE = "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib"
GIB_VERSION = "v1.1.0"
"""The NCCL gIB plugin installer image and the version Cluster Toolkit's A3 Ultra / A4 blueprints install."""
GIB_HOST_LIB = "/home/kubernetes/bin/nvidia/lib64"
GIB_HOST_DIR = "/home/kubernetes/bin/gib"
"""Where the installer puts NCCL and the gIB plugin on the node (GKE's NVIDIA library directory)."""
GIB_NAMESPACE = "kube-system"
NODE_POOL_LABEL = "cloud.google.com/gke-nodepool"
"""The label GKE puts on every node with its node pool's name (the installer's node affinity)."""


def needs_gib(row: InstanceType) -> bool:
    """True for a machine type whose RDMA NICs NCCL reaches through the gIB plugin (A3 Ultra, A4)."""
    layout = layout_for(row.instance_type)
    return row.fabric == "rdma" and layout is not None and layout.roce


def gib_installer_name(pool_name: str) -> str:
    """The gIB installer DaemonSet of a node pool: ``nccl-rdma-installer-<node pool>`` (a valid object name)."""
    return f"nccl-rdma-installer-{node_pool_name(pool_name)}"[:63].rstrip("-")


def on_kubernetes(pool: PoolPlan) -> bool:
    return pool.platform == KUBERNETES


# --- named checks ----------------------------------------------------------------------------------------


def check_site_gke_cluster_id(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """An existing GKE cluster is named by its id, ``projects/<project>/locations/<location>/clusters/<name>``,
    in the site's project and region (a zonal cluster's zone of the region)."""
    k8s = site.platform.kubernetes
    if k8s is None or k8s.create:
        return []
    field = f"{loc}.platform.kubernetes.cluster_id"
    hint = (f"projects/{site.project or '<project>'}/locations/{site.region}/clusters/<name> "
            "(`gcloud container clusters list --uri`)")
    if not k8s.cluster_id:
        return []  # gpufleet.platforms.check_platforms asks for it
    match = CLUSTER_ID.fullmatch(k8s.cluster_id)
    if match is None:
        return [Issue(field, f"{k8s.cluster_id!r} is not a GKE cluster id (pattern {CLUSTER_ID.pattern})", hint)]
    issues = []
    if site.project and match["project"] != site.project:
        issues.append(Issue(field, f"cluster {match['name']} is in project {match['project']}, the site in "
                            f"{site.project}", "the site's project, or a site for that project"))
    if match["location"] != site.region and not match["location"].startswith(f"{site.region}-"):
        issues.append(Issue(field, f"cluster {match['name']} is in {match['location']}, outside the site's region "
                            f"{site.region}", f"a cluster of {site.region}"))
    return issues


def check_site_gke_cluster_name(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """A created GKE cluster's name (``cluster_name``, default ``gpufleet-<site>``) is at most 40 lowercase
    letters, digits and hyphens, from a letter, not ending in a hyphen."""
    k8s = site.platform.kubernetes
    if k8s is None or not k8s.create:
        return []
    name = k8s.name_at(site.name)
    if NODE_POOL_NAME.fullmatch(name):
        return []
    return [Issue(f"{loc}.platform.kubernetes.cluster_name", f"{name!r} cannot name a GKE cluster "
                  f"(pattern {NODE_POOL_NAME.pattern})", "at most 40 lowercase letters, digits and hyphens, from a "
                  "letter; set cluster_name when the site's name makes the default too long")]


def check_pool_gke_accelerator(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A GKE GPU node pool's machine type has a GKE accelerator type gpufleet knows (TPU machine types
    carry no ``guest_accelerator``: :mod:`gpufleet.clouds.gcp.gke_tpu` checks them)."""
    if not on_kubernetes(pool) or pool.accelerator_kind == "tpu" or accelerator_type(row.instance_type) is not None:
        return []
    return [Issue(f"{loc}.instance_types", f"gpufleet knows no GKE accelerator type for {row.instance_type}, so it "
                  "cannot build its node pool", ", ".join(f"{family}-*" for family in sorted(ACCELERATOR_TYPES)))]


def check_pool_gke_zone_size(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A GKE node pool holds at most :data:`NODES_PER_POOL_ZONE_MAX` nodes per zone."""
    per_zone = nodes_per_zone(pool)
    if not on_kubernetes(pool) or per_zone <= NODES_PER_POOL_ZONE_MAX:
        return []
    return [Issue(f"{loc}.instance_types", f"node pool {pool.name} would hold {per_zone} nodes in one zone; a GKE node "
                  f"pool holds at most {NODES_PER_POOL_ZONE_MAX} per zone",
                  "more zones or sites for the service, or a larger machine type")]


def check_pool_gke_queued_provisioning(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """Queued provisioning (``capacity.type: flex_start`` on GKE) takes no compact placement on GPUs: the
    run sets ``placement_group: false`` knowing its nodes are not placed close together."""
    if not on_kubernetes(pool) or not queued(pool) or not pool.placement_group \
            or machine_family(row.instance_type) not in WORKLOAD_POLICY_FAMILIES:
        return []
    return [Issue(f"{loc}.capacity.placement_group",
                  f"node pool {pool.name} gets its nodes through GKE queued provisioning (flex_start), which takes no "
                  "COMPACT placement policy on GPUs, so its nodes would not be placed close together",
                  "placement_group: false to accept that; or capacity.type: reservation (the reservation places "
                  "its nodes) or on_demand (a HIGH_THROUGHPUT workload policy places them)")]


SITE_CHECKS: tuple[SiteCheck, ...] = (check_site_gke_cluster_id, check_site_gke_cluster_name)
POOL_CHECKS: tuple[PoolCheck, ...] = (check_pool_gke_accelerator, check_pool_gke_zone_size,
                                      check_pool_gke_queued_provisioning)
"""The GKE checks the GCP profile runs after its own (each returns nothing for a pool on VMs)."""

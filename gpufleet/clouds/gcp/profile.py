"""GCP as gpufleet knows it: NIC layouts, fabric setup, placement, reservations, the metric path, identifiers.

Every fact and refusal here names the Google page (or Cluster Toolkit blueprint) it comes from, read
2026-11; each refusal is a named check (``check_site_*`` / ``check_pool_*``) that :mod:`gpufleet.checks`
runs before any resource exists. docs/components.md lists the same rules with the same sources.

NIC layouts by machine family (Google's Cluster Toolkit blueprints and the GPU network bandwidth
page: https://cloud.google.com/compute/docs/gpus/gpu-network-bandwidth,
github.com/GoogleCloudPlatform/cluster-toolkit ``examples/machine-learning/*`` and
``modules/network/{multivpc,gpu-rdma-vpc}``):

* A3 Mega (``a3-megagpu-8g``, GPUDirect-TCPXO): 1 system gVNIC + 8 GPU NICs, each in its own VPC.
* A3 High (``a3-highgpu-8g``, GPUDirect-TCPX): 1 system gVNIC + 4 GPU NICs, each in its own VPC.
* A3 Ultra (``a3-ultragpu-8g``) and A4 (``a4-highgpu-8g``), GPUDirect RDMA over RoCE: 2 gVNIC VPCs +
  one RoCE VPC created with the zone's ``<zone>-vpc-roce`` network profile, 8 subnets, 8 NICs of
  type ``MRDMA``. A4X (``a4x-highgpu-4g``): the same with 4 MRDMA NICs.

Fabric subnets are carved from :data:`FABRIC_RANGE` in /22 slots: the GPU VPCs of each GPUDirect-TCPX(O)
fabric, the second host gVNIC VPC, then :data:`ROCE_SUBNETS_PER_ZONE` RoCE subnets per zone.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gpufleet.clouds.base import CloudProfile, match_or_issue
from gpufleet.clouds.gcp.tpu import check_pool_tpu_slice, is_tpu
from gpufleet.errors import Issue

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType
    from gpufleet.plan import PoolPlan
    from gpufleet.spec import SiteSpec

# --- resource type tokens (what the components create and the pack reads) ----------------------------

REGION_MIG = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
ZONE_MIG = "gcp:compute/instanceGroupManager:InstanceGroupManager"
AUTOSCALERS = ("gcp:compute/regionAutoscaler:RegionAutoscaler", "gcp:compute/autoscaler:Autoscaler")
TEMPLATES = ("gcp:compute/instanceTemplate:InstanceTemplate",
             "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate")
RESOURCE_POLICY = "gcp:compute/resourcePolicy:ResourcePolicy"
RESIZE_REQUEST = "gcp:compute/resizeRequest:ResizeRequest"
INSTANCE = "gcp:compute/instance:Instance"
SERVICE_ACCOUNT = "gcp:serviceaccount/account:Account"
PROJECT_IAM_MEMBER = "gcp:projects/iAMMember:IAMMember"

# --- NIC layouts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NicLayout:
    """How a machine family attaches its GPU network.

    Attributes:
        fabric: the catalog fabric the layout delivers.
        host_nics: gVNIC NICs on host VPCs (the system VPC, plus a second one on A3 Ultra / A4).
        gpu_nics: GPU-network NICs.
        gpu_nic_type: ``GVNIC`` (TCPX / TCPXO) or ``MRDMA`` (RoCE).
        roce: True: the GPU NICs share one RoCE VPC per zone; False: one VPC per GPU NIC.
        mtu: MTU of the GPU VPCs.
    """

    fabric: str
    host_nics: int
    gpu_nics: int
    gpu_nic_type: str
    roce: bool
    mtu: int


LAYOUTS: dict[str, NicLayout] = {
    "a3-megagpu": NicLayout("gpudirect-tcpxo", 1, 8, "GVNIC", False, 8244),
    "a3-highgpu": NicLayout("gpudirect-tcpx", 1, 4, "GVNIC", False, 8244),
    "a3-ultragpu": NicLayout("rdma", 2, 8, "MRDMA", True, 8896),
    "a4-highgpu": NicLayout("rdma", 2, 8, "MRDMA", True, 8896),
    "a4x-highgpu": NicLayout("rdma", 2, 4, "MRDMA", True, 8896),
}
"""NIC layout by machine family (the machine type without its ``-<n>g`` suffix)."""

HYPERDISK_ONLY = frozenset({"a3-ultragpu", "a4-highgpu", "a4x-highgpu"})
"""Machine families whose boot disk must be Hyperdisk (no Persistent Disk)."""


def machine_family(machine_type: str) -> str:
    """``a3-ultragpu-8g`` → ``a3-ultragpu``."""
    return "-".join(machine_type.split("-")[:2])


def layout_for(machine_type: str) -> NicLayout | None:
    """The NIC layout of a machine type's family, or None when gpufleet knows none."""
    return LAYOUTS.get(machine_family(machine_type))


# --- fabric addressing -------------------------------------------------------------------------------

FABRIC_RANGE = "192.168.0.0/16"
"""GPU / RoCE subnets are carved from this range in /22 slots (1,022 nodes each); it must not
overlap the site's own network_cidr, because one VM has NICs in both."""
FABRIC_SUBNET_PREFIX = 22
GPU_VPC_FIRST_SLOT = {"gpudirect-tcpxo": 0, "gpudirect-tcpx": 8}
"""First slot of each GPUDirect-TCPX(O) fabric's GPU VPCs (one slot per GPU NIC of its layout)."""
SLOT_GVNIC2 = 12
"""The second host gVNIC VPC of A3 Ultra / A4."""
SLOTS_ROCE = 16
"""First RoCE slot: zone ``i`` of the site gets slots ``16 + 8 i`` to ``16 + 8 i + 7``."""
ROCE_SUBNETS_PER_ZONE = 8
MAX_ROCE_ZONES = (2 ** (FABRIC_SUBNET_PREFIX - ipaddress.ip_network(FABRIC_RANGE).prefixlen) - SLOTS_ROCE) \
    // ROCE_SUBNETS_PER_ZONE
"""Zones of a site (its first ones) that have RoCE slots left in :data:`FABRIC_RANGE`."""
SYSTEM_MTU = 8896
"""MTU of the system and second host VPCs, and of the RoCE VPCs."""


def roce_network_profile(project: str, zone: str) -> str:
    """The network profile a zone's RoCE VPC is created with."""
    return f"projects/{project}/global/networkProfiles/{zone}-vpc-roce"


# --- images ------------------------------------------------------------------------------------------

IMAGE_PROJECT = "ubuntu-os-accelerator-images"
"""Google's accelerator images (NVIDIA driver, MOFED for RoCE): https://cloud.google.com/ai-hypercomputer/docs/software-stack"""


def image_family(row: InstanceType) -> tuple[str, str]:
    """(project, family) of the default node image for the machine's GPU generation."""
    if row.gpu in {"GB200", "GB300"}:
        return IMAGE_PROJECT, "ubuntu-accelerator-2404-arm64-with-nvidia-580"
    if row.gpu in {"B200", "B300"}:
        return IMAGE_PROJECT, "ubuntu-accelerator-2404-amd64-with-nvidia-570"
    return IMAGE_PROJECT, "ubuntu-accelerator-2204-amd64-with-nvidia-570"


def is_image_link(image: str) -> bool:
    """True for an image self link; else the image is ``<project>/<family>``."""
    return "/global/images/" in image


# --- fabric setup ----------------------------------------------------------------------------------
# GPUDirect-TCPX (A3 High) and GPUDirect-TCPXO (A3 Mega) need software on every node besides the NICs:
# the receive-data-path manager (RxDM) running beside the workload, the NCCL network plugin, and for
# TCPXO the dma-buf import helper and aperture devices. Google's VM guide runs them as containers
# (https://cloud.google.com/compute/docs/gpus/gpudirect, "Create an A3 Mega, A3 High, or A3 Edge
# instance with GPUDirect enabled"); the Cluster Toolkit A3 Mega blueprint bakes them into a custom
# image (examples/machine-learning/a3-megagpu-8g/a3mega-slurm-blueprint.yaml). gpufleet's templates
# boot Google's accelerator image without them, so the NICs are attached but the fabric is not up.

GPUDIRECT_TCPX_FABRICS = frozenset({"gpudirect-tcpx", "gpudirect-tcpxo"})
GPUDIRECT_GUIDE = "https://cloud.google.com/compute/docs/gpus/gpudirect"


def tcpx_setup_gap(row: InstanceType) -> str | None:
    """What gpufleet leaves undone of a GPUDirect-TCPX(O) fabric (None for any other fabric)."""
    if row.fabric not in GPUDIRECT_TCPX_FABRICS:
        return None
    name = "GPUDirect-TCPXO" if row.fabric == "gpudirect-tcpxo" else "GPUDirect-TCPX"
    return (f"gpufleet attaches the {row.fabric_interfaces} GPU NICs of {row.instance_type} but installs neither "
            f"{name}'s receive-data-path manager nor its NCCL plugin, so NCCL would run over TCP sockets "
            f"({GPUDIRECT_GUIDE})")


# --- placement -------------------------------------------------------------------------------------
# A COLLOCATED placement policy with vmCount admits exactly that many VMs created together, which a
# managed instance group does not do. Google's placement for MIGs of these families is a workload
# policy (type HIGH_THROUGHPUT) set on the group: https://cloud.google.com/compute/docs/instance-groups/
# about-workload-policies (A4X Max, A4X, A4, A3 Ultra, A3 Mega, A3 High 8-GPU; optional except on A4X,
# which also needs an accelerator topology gpufleet does not build). Other families train on one node
# (multi-node training needs a fabric), where placement is moot, so gpufleet creates no COLLOCATED policy.

WORKLOAD_POLICY_FAMILIES = frozenset({"a3-highgpu", "a3-megagpu", "a3-ultragpu", "a4-highgpu"})
WORKLOAD_POLICY_TYPE = "HIGH_THROUGHPUT"
Placement = Literal["reservation", "workload-policy", "none"]


def placement_for(pool: PoolPlan) -> Placement:
    """Where a training cluster's compact placement comes from.

    ``reservation``: a specific reservation's own placement (no new policy: a reservation with a
    compact placement policy or a dense deployment places its VMs itself, and one without admits no
    outside policy, as Slurm-GCP's resume.py in Cluster Toolkit treats them); ``workload-policy``: a
    HIGH_THROUGHPUT workload policy on the MIG; ``none``: no placement (``placement_group: false``,
    or a family without workload policies).
    """
    if pool.capacity_type == "reservation":
        return "reservation"
    if pool.placement_group and machine_family(pool.instance_type) in WORKLOAD_POLICY_FAMILIES:
        return "workload-policy"
    return "none"


# --- reservations ----------------------------------------------------------------------------------
# The reservation-bound provisioning model is how VMs consume a reservation auto-created from a future
# reservation (calendar mode or AI Hypercomputer): https://cloud.google.com/compute/docs/instances/
# about-reservation-bound-instances (A4X, A4, A3 Ultra, A3 Mega, A3 High 8-GPU, A3 Edge, H4D). Cluster
# Toolkit's a3ultra-vm.yaml and a4high-vm.yaml keep RESERVATION_BOUND with a reservation.

RESERVATION_BOUND_FAMILIES = frozenset({"a3-edgegpu", "a3-highgpu", "a3-megagpu", "a3-ultragpu", "a4-highgpu",
                                        "a4x-highgpu"})
RESERVATION_BOUND_BY_DEFAULT = frozenset({"a3-ultragpu", "a4-highgpu", "a4x-highgpu"})
"""Families whose reservations come from future reservations (Cluster Toolkit's defaults)."""


RESERVATION_PATH = re.compile(r"^projects/(?P<project>[^/]+)/(?:zones/[^/]+/)?reservations/(?P<name>[^/]+)$")


def reservation_affinity_value(reservation_id: str) -> str:
    """How a template names the reservation it consumes: the name, or ``projects/<p>/reservations/<n>``
    for a reservation shared from another project (a zone in the path is dropped; the template's
    ``compute.googleapis.com/reservation-name`` key takes those two forms:
    https://cloud.google.com/compute/docs/instances/reservations-consume)."""
    match = RESERVATION_PATH.fullmatch(reservation_id)
    return f"projects/{match['project']}/reservations/{match['name']}" if match else reservation_id


def reservation_bound(pool: PoolPlan) -> bool:
    """True when the cluster's VMs use the reservation-bound provisioning model."""
    if pool.capacity_type != "reservation":
        return False
    if pool.reservation_bound is not None:
        return pool.reservation_bound
    return machine_family(pool.instance_type) in RESERVATION_BOUND_BY_DEFAULT


# --- flex-start (Dynamic Workload Scheduler) -------------------------------------------------------
# A MIG resize request creates Flex-start VMs all at once when DWS finds the capacity; they run for the
# requested run duration (10 minutes to 7 days) and are then deleted. Best-effort: no capacity is held
# (https://cloud.google.com/compute/docs/instance-groups/about-resize-requests-mig,
# https://cloud.google.com/compute/docs/instances/about-flex-start-vms).

FLEX_START_MAX_RUN_S = 7 * 86_400
FLEX_START_MIN_RUN_S = 600


def flex_start_run_s(pool: PoolPlan) -> int:
    """The resize request's run duration: the run's planned days at its size, within DWS's bounds."""
    days = float(pool.sizing.get("days_at_rounded_size", 0.0) or 0.0)
    return min(max(math.ceil(days * 86_400), FLEX_START_MIN_RUN_S), FLEX_START_MAX_RUN_S)


def check_pool_flex_start(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A flex-start run finishes within the 7 days Flex-start VMs may run (they are deleted after)."""
    if pool.capacity_type != "flex_start":
        return []
    days = float(pool.sizing.get("days_at_rounded_size", 0.0) or 0.0)
    if days * 86_400 <= FLEX_START_MAX_RUN_S:
        return []
    return [Issue(f"{loc}.capacity.type",
                  f"the run takes {days:.1f} days at {pool.nodes} nodes, but Flex-start VMs run at most 7 days "
                  "(Compute Engine deletes them at the end of the requested run duration)",
                  "more nodes (`nodes:`) or a shorter run so it ends within 7 days, or capacity.type on_demand / "
                  "reservation")]


# --- managed instance groups -----------------------------------------------------------------------

INFERENCE_TARGET_SHAPE = "BALANCED"
"""Regional MIG target shape for GPU serving: BALANCED creates VMs where the hardware is available while
spreading as evenly as it can; EVEN insists on equal zones (https://cloud.google.com/compute/docs/
instance-groups/regional-mig-distribution-shape). Only EVEN supports proactive redistribution, so the
group's redistribution is NONE."""
TRAINING_WAIT_MINUTES = 60
"""How long ``pulumi up`` waits for a training MIG to be stable (all VMs created) before failing."""
INFERENCE_WAIT_MINUTES = 30
"""How long ``pulumi up`` waits for an inference MIG's minimum (plus the standby pool's initial delay)."""


# --- the autoscaling metric path -------------------------------------------------------------------
# The autoscaler reads a per-instance metric written for the gce_instance monitored resource
# (https://cloud.google.com/compute/docs/autoscaler/scaling-cloud-monitoring-metrics). Writing needs
# monitoring.timeSeries.create, which roles/monitoring.metricWriter grants
# (https://cloud.google.com/monitoring/access-control), held by the VM's service account with the
# cloud-platform scope (https://cloud.google.com/compute/docs/access/service-accounts#scopes_best_practice),
# and a route to monitoring.googleapis.com from VMs without external IPs: Private Google Access on the
# subnet (https://cloud.google.com/vpc/docs/private-google-access) over the VPC's default route.
# Metric type names: letters, digits and underscores, path elements separated by '/', each starting with
# a letter, at most 200 characters (https://cloud.google.com/monitoring/api/v3/naming-conventions).

MONITORING_WRITER_ROLE = "roles/monitoring.metricWriter"
NODE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
LOGGING_WRITER_ROLE = "roles/logging.logWriter"
TRAINING_NODE_ROLES = (LOGGING_WRITER_ROLE, MONITORING_WRITER_ROLE)
"""A training VM's own service account may write logs and metrics, nothing else: what the Ops Agent
needs (https://cloud.google.com/stackdriver/docs/solutions/agents/ops-agent/authorization), instead of
no identity or the Compute Engine default account, which Google advises against for workloads (it is
often granted Editor; https://cloud.google.com/compute/docs/access/service-accounts#default_service_account).
Cluster Toolkit's GPU blueprints (``examples/gke-a4/gke-a4.yaml``, ``modules/project/service-account``)
give their node accounts the same two writer roles."""
CUSTOM_METRIC_PREFIX = "custom.googleapis.com/"
METRIC_TYPE_MAX_CHARS = 200
METRIC_PATH_ELEMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SERVICE_ACCOUNT_ID = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
"""A service account id: 6-30 lowercase letters, digits and hyphens, from a letter, not ending in a hyphen
(https://cloud.google.com/iam/docs/service-accounts-create)."""


def metric_type(pool: PoolPlan) -> str:
    """The metric type the pool's autoscaler reads (``custom.googleapis.com/<namespace>/<name>``)."""
    return f"{CUSTOM_METRIC_PREFIX}{pool.scaling_metric_namespace}/{pool.scaling_metric_name}"


def service_account_id(pool_name: str) -> str:
    """The account id of a pool's node service account: ``gpufleet-<pool>``, shortened with a digest."""
    wanted = f"gpufleet-{pool_name}"
    if len(wanted) <= 30:
        return wanted
    digest = hashlib.sha256(pool_name.encode()).hexdigest()[:6]
    return f"gf-{pool_name[:20].rstrip('-')}-{digest}"


def service_account_email(account_id: str, project: str) -> str:
    """A user-managed service account's email (https://cloud.google.com/iam/docs/service-account-types)."""
    return f"{account_id}@{project}.iam.gserviceaccount.com"


# --- named checks: the site's identifiers -----------------------------------------------------------
# Google publishes region and zone names, not a grammar for them (https://cloud.google.com/compute/docs/
# regions-zones): regions are ``<area>-<direction><n>`` (us-central1, northamerica-northeast1), zones
# ``<region>-<letter>``. The patterns below are that observed form. Project ids: 6-30 lowercase letters,
# digits or hyphens, starting with a letter, no trailing hyphen
# (https://cloud.google.com/resource-manager/docs/creating-managing-projects).

REGION_PATTERN = re.compile(r"^[a-z]+-[a-z]+[0-9]{1,2}$")
PROJECT_PATTERN = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")

SUBNET_PROHIBITED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32"))
"""Ranges a GCP subnet may not use (https://cloud.google.com/vpc/docs/subnets, prohibited IPv4 ranges):
"this network", loopback, link-local, multicast, broadcast."""
SUBNET_SMALLEST_PREFIX = 29
"""The smallest IPv4 subnet GCP creates (same page). The spec's /20-or-larger network keeps gpufleet's
node subnet (one bit longer) far from it; GCP's largest subnet size was not verified."""


def check_site_region(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The region is a GCP region name (``us-central1``), nothing else: it ends up in resource paths."""
    return match_or_issue(site.region, REGION_PATTERN, f"{loc}.region", "a GCP region name",
                          "a name `gcloud compute regions list` prints, e.g. us-central1")


def check_site_zones(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """Every zone is ``<region>-<letter>`` of the site's own region (of some region, while the region
    itself is not a region name)."""
    known_region = bool(REGION_PATTERN.fullmatch(site.region))  # then only [a-z0-9-]: nothing to escape
    pattern = re.compile(f"^{site.region if known_region else REGION_PATTERN.pattern[1:-1]}-[a-z]$")
    example = f"{site.region}-a" if known_region else "us-central1-a"
    return [Issue(f"{loc}.zones[{i}]", f"{zone!r} is not a zone of region {site.region!r} (pattern {pattern.pattern})",
                  f"<region>-<letter>, e.g. {example} (`gcloud compute zones list`)")
            for i, zone in enumerate(site.zones) if not pattern.fullmatch(zone)]


def check_site_project(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """A site names its project (the provider's project, and the RoCE network profile path)."""
    if site.project:
        return []
    return [Issue(f"{loc}.project", "a GCP site needs its project (the provider's project, and the "
                  "RoCE network profile path)", "the project id, e.g. my-training-project")]


def check_site_project_id(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """A project given is a GCP project id: 6-30 lowercase letters, digits, hyphens, from a letter."""
    return match_or_issue(site.project, PROJECT_PATTERN, f"{loc}.project", "a GCP project id",
                          "6-30 lowercase letters, digits or hyphens, starting with a letter, not ending in a hyphen "
                          "(the project id, not its name or number)")


def check_site_network_cidr(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The site's range avoids the ranges GCP prohibits in subnets, and its node subnet is /29 or larger."""
    net = ipaddress.ip_network(site.network_cidr)
    issues = []
    prohibited = [str(r) for r in SUBNET_PROHIBITED if net.overlaps(r)]
    if prohibited:
        issues.append(Issue(f"{loc}.network_cidr", f"{site.network_cidr} overlaps {', '.join(prohibited)}, which GCP "
                            "does not allow in a subnet (loopback, link-local, multicast, broadcast or 0.0.0.0/8)",
                            "an RFC 1918 range such as 10.30.0.0/16"))
    if net.prefixlen + 1 > SUBNET_SMALLEST_PREFIX:
        issues.append(Issue(f"{loc}.network_cidr", f"{site.network_cidr} gives a /{net.prefixlen + 1} node subnet; "
                            f"GCP subnets are /{SUBNET_SMALLEST_PREFIX} or larger", "a /16 or /20 range"))
    return issues


# --- named checks: the site's fabric addressing ------------------------------------------------------


def _fabric_pools(pools: Sequence[PoolPlan]) -> list[PoolPlan]:
    return [p for p in pools if p.role == "training" and layout_for(p.instance_type) is not None]
def check_site_clear_of_fabric_range(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """A site with fabric clusters keeps its network_cidr out of :data:`FABRIC_RANGE`."""
    if not _fabric_pools(pools) or not ipaddress.ip_network(site.network_cidr).overlaps(
            ipaddress.ip_network(FABRIC_RANGE)):
        return []
    return [Issue(f"{loc}.network_cidr",
                  f"{site.network_cidr} overlaps {FABRIC_RANGE}, where gpufleet puts the GPU / RoCE "
                  "subnets of this site's training clusters", f"a range outside {FABRIC_RANGE}")]


def check_site_roce_zones(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """RoCE clusters sit in the site's first :data:`MAX_ROCE_ZONES` zones (the ones with RoCE slots)."""
    roce_zones = sorted({p.zones[0] for p in _fabric_pools(pools) if (lay := layout_for(p.instance_type)) and lay.roce
                         and p.zones and p.zones[0] in site.zones})
    late = [z for z in roce_zones if site.zones.index(z) >= MAX_ROCE_ZONES]
    if not late:
        return []
    return [Issue(f"{loc}.zones", f"RoCE clusters in zone(s) {', '.join(late)}: only the first "
                  f"{MAX_ROCE_ZONES} zones of a site get RoCE address slots",
                  "list those zones earlier in the site's zones")]


def check_pool_nic_layout(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A training machine type with a fabric has a known NIC layout, and it delivers that fabric (a TPU
    slice's fabric is its chips' ICI, not NICs: :mod:`gpufleet.clouds.gcp.tpu` checks it)."""
    if pool.role != "training" or row.fabric in ("none", "ici"):
        return []
    layout = layout_for(row.instance_type)
    if layout is None:
        return [Issue(f"{loc}.instance_types",
                      f"{row.instance_type} has fabric {row.fabric!r} but gpufleet knows no NIC layout for the "
                      f"{machine_family(row.instance_type)} family",
                      ", ".join(f"{family}-*" for family in sorted(LAYOUTS)))]
    if layout.fabric != row.fabric:
        return [Issue(f"{loc}.instance_types",
                      f"the catalog gives {row.instance_type} fabric {row.fabric!r} but its family's NIC layout "
                      f"delivers {layout.fabric!r}", "fix the catalog row")]
    return []


def check_pool_fabric_enabled(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A multi-node GPUDirect-TCPX(O) cluster has its fabric software from somewhere: gpufleet installs
    none (:func:`tcpx_setup_gap`), so the run must say it starts it (``fabric_setup_by_workload``)."""
    gap = tcpx_setup_gap(row)
    if pool.role != "training" or pool.nodes < 2 or gap is None or pool.fabric_setup_by_workload:
        return []
    return [Issue(f"{loc}.fabric_setup_by_workload",
                  f"{pool.nodes}-node {row.instance_type} cluster {pool.name} would have no GPU fabric: {gap}",
                  "fabric_setup_by_workload: true if the run starts the receive-data-path manager and the NCCL "
                  "plugin on every node itself; or a3-ultragpu-8g / a4-highgpu-8g (GPUDirect RDMA over "
                  "RoCE); or a single node")]


def check_pool_reservation_bound(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """``capacity.reservation_bound`` is set only with a reservation, and ``true`` only on the families
    Google offers the reservation-bound provisioning model for."""
    if pool.reservation_bound is None:
        return []
    if pool.capacity_type != "reservation":
        return [Issue(f"{loc}.capacity.reservation_bound", "reservation_bound is only valid with capacity type "
                      f"'reservation', not {pool.capacity_type!r}", "capacity.type: reservation, or leave it out")]
    if not pool.reservation_bound or machine_family(row.instance_type) in RESERVATION_BOUND_FAMILIES:
        return []
    return [Issue(f"{loc}.capacity.reservation_bound",
                  f"{row.instance_type} cannot use the reservation-bound provisioning model (GCP offers it for "
                  "reservations auto-created from future reservations of A4X, A4, A3 Ultra, A3 Mega, A3 High and "
                  "A3 Edge machines)",
                  "reservation_bound: false (a specific reservation consumed with the standard model)")]


def check_pool_scaling_metric(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """An inference pool's scaling metric is a metric type Cloud Monitoring accepts, so the nodes can write
    what the autoscaler reads: path elements of letters, digits and '_' starting with a letter, the
    whole type at most :data:`METRIC_TYPE_MAX_CHARS` characters. (On GKE the service scales on its
    Prometheus query instead.)"""
    if pool.role != "inference" or pool.platform == "kubernetes":
        return []
    issues = []
    name = metric_type(pool)
    for field, value in (("metric_namespace", pool.scaling_metric_namespace), ("metric_name", pool.scaling_metric_name)):
        bad = [part for part in value.split("/") if not METRIC_PATH_ELEMENT.fullmatch(part)]
        if field == "metric_name" and "/" in value:
            bad = [value]
        if bad:
            issues.append(Issue(f"{loc}.scaling.{field}",
                                f"{value!r} cannot be part of a Cloud Monitoring metric type, so the autoscaler of "
                                f"{pool.name} would read a metric its nodes cannot write",
                                f"path elements matching {METRIC_PATH_ELEMENT.pattern}"
                                + (", '/' between them" if field == "metric_namespace" else ", no '/'")))
    if not issues and len(name) > METRIC_TYPE_MAX_CHARS:
        issues.append(Issue(f"{loc}.scaling.metric_name", f"metric type {name!r} is {len(name)} characters",
                            f"at most {METRIC_TYPE_MAX_CHARS} characters in all"))
    return issues


# GKE's checks build on the facts above, so they are imported once those exist.
from gpufleet.clouds.gcp import gke, gke_tpu  # noqa: E402


class GcpProfile(CloudProfile):
    """Compute Engine and GKE: GPUDirect-TCPX(O) and RoCE fabrics, reservations, OS Login, labels."""

    name = "gcp"
    title = "GCP"
    fabrics = frozenset({"gpudirect-tcpx", "gpudirect-tcpxo", "rdma", "ici"})
    capacity_types = frozenset({"on_demand", "reservation", "flex_start"})
    site_checks = (check_site_region, check_site_zones, check_site_project, check_site_project_id,
                   check_site_network_cidr, check_site_clear_of_fabric_range, check_site_roce_zones,
                   *gke.SITE_CHECKS)
    pool_checks = (check_pool_nic_layout, check_pool_fabric_enabled, check_pool_reservation_bound,
                   check_pool_scaling_metric, check_pool_tpu_slice, check_pool_flex_start, *gke.POOL_CHECKS,
                   *gke_tpu.POOL_CHECKS)
    image_forms = "<project>/<family> nor an image self link"
    image_examples = (f"{IMAGE_PROJECT}/ubuntu-accelerator-2204-amd64-with-nvidia-570, or "
                      "projects/<project>/global/images/<image>")
    tag_paths = (("labels",), ("allInstancesConfig", "labels"), ("nodeConfig", "resourceLabels"))
    kubernetes_accelerator_kinds = frozenset({"gpu", "tpu"})  # TPUs as GKE TPU slice node pools (gke_tpu)

    def fabric_interfaces(self, row: InstanceType) -> int:
        if is_tpu(row):  # every chip of a TPU VM joins its slice's ICI
            return row.fabric_interfaces
        layout = layout_for(row.instance_type)
        return layout.gpu_nics if layout is not None and row.fabric != "none" else 0

    def fabric_setup_gap(self, row: InstanceType) -> str | None:
        return tcpx_setup_gap(row)

    def image_is_valid(self, image: str) -> bool:
        return is_image_link(image) or image.count("/") == 1

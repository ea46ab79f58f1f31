"""GCP as gpufleet knows it: NIC layouts by machine family, fabric address slots, images, resource types.

NIC layouts by machine family (Google's Cluster Toolkit blueprints and the GPU network bandwidth
page, read 2026-11: https://cloud.google.com/compute/docs/gpus/gpu-network-bandwidth,
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

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpufleet.clouds.base import CloudProfile
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
INSTANCE = "gcp:compute/instance:Instance"

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


# --- named checks ------------------------------------------------------------------------------------


def _fabric_pools(pools: Sequence[PoolPlan]) -> list[PoolPlan]:
    return [p for p in pools if p.role == "training" and layout_for(p.instance_type) is not None]


def check_site_project(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """A site names its project (the provider's project, and the RoCE network profile path)."""
    if site.project:
        return []
    return [Issue(f"{loc}.project", "a GCP site needs its project (the provider's project, and the "
                  "RoCE network profile path)", "the project id, e.g. my-training-project")]


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
    """A training machine type with a fabric has a known NIC layout, and it delivers that fabric."""
    if pool.role != "training" or row.fabric == "none":
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


class GcpProfile(CloudProfile):
    """Compute Engine: GPUDirect-TCPX(O) and RoCE fabrics, reservations, OS Login, labels."""

    name = "gcp"
    title = "GCP"
    fabrics = frozenset({"gpudirect-tcpx", "gpudirect-tcpxo", "rdma"})
    capacity_types = frozenset({"on_demand", "reservation"})
    site_checks = (check_site_project, check_site_clear_of_fabric_range, check_site_roce_zones)
    pool_checks = (check_pool_nic_layout,)
    image_forms = "<project>/<family> nor an image self link"
    image_examples = (f"{IMAGE_PROJECT}/ubuntu-accelerator-2204-amd64-with-nvidia-570, or "
                      "projects/<project>/global/images/<image>")
    tag_paths = (("labels",), ("allInstancesConfig", "labels"))

    def fabric_interfaces(self, row: InstanceType) -> int:
        layout = layout_for(row.instance_type)
        return layout.gpu_nics if layout is not None and row.fabric != "none" else 0

    def image_is_valid(self, image: str) -> bool:
        return is_image_link(image) or image.count("/") == 1

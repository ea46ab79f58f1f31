"""Azure as gpufleet knows it: InfiniBand islands, the RDMA address range, images, resource types.

Sources (read 2026-11):

* InfiniBand only links VMs of the same scale set, in a single placement group (≤ 100 VMs by
  default, ≤ 300 after a support request); the RDMA network reserves 172.16.0.0/16, so the VNet
  must not overlap it: https://learn.microsoft.com/azure/virtual-machines/setup-infiniband
* HPC images (publisher ``microsoft-dsvm``, offer ``ubuntu-hpc``):
  https://learn.microsoft.com/azure/virtual-machines/azure-hpc-vm-images
  The SKU string ``2204`` is the Ubuntu 22.04 image; override it per pool if your region differs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gpufleet.clouds.base import CloudProfile, split_islands
from gpufleet.errors import Issue

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType
    from gpufleet.plan import PoolPlan
    from gpufleet.spec import SiteSpec

# --- resource type tokens (what the components create and the pack reads) ----------------------------

SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
AUTOSCALE_SETTINGS = ("azure-native:monitor:AutoscaleSetting", "azure-native:insights:AutoscaleSetting")
VIRTUAL_MACHINE = "azure-native:compute:VirtualMachine"

# --- facts -------------------------------------------------------------------------------------------

INFINIBAND_RESERVED = ipaddress.ip_network("172.16.0.0/16")
"""Address range the InfiniBand (RDMA) network uses; a VNet must not overlap it."""

SINGLE_PLACEMENT_GROUP_MAX_VMS = 300
"""Largest single-placement-group scale set Azure allows (100 by default, 300 after a quota raise)."""

HPC_IMAGE = ("microsoft-dsvm", "ubuntu-hpc", "2204", "latest")
"""Default node image (publisher, offer, sku, version): Ubuntu-HPC 22.04 (InfiniBand drivers, NCCL,
NVIDIA driver)."""


def default_resource_group(site_name: str) -> str:
    """The resource group gpufleet creates for a site that names none."""
    return f"gpufleet-{site_name}"


def resource_group(site: SiteSpec) -> str:
    """The site's resource group: its own, or :func:`default_resource_group`."""
    return site.resource_group or default_resource_group(site.name)


def is_image_id(image: str) -> bool:
    """True for an image resource id (``/subscriptions/...``); else it is ``publisher:offer:sku:version``."""
    return image.startswith("/")


# --- named checks ------------------------------------------------------------------------------------


def check_site_vnet_clear_of_infiniband(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The site's VNet does not overlap :data:`INFINIBAND_RESERVED` (ND-series RDMA network)."""
    if not ipaddress.ip_network(site.network_cidr).overlaps(INFINIBAND_RESERVED):
        return []
    return [Issue(f"{loc}.network_cidr",
                  f"VNet range {site.network_cidr} overlaps {INFINIBAND_RESERVED}, which Azure reserves "
                  "for the InfiniBand (RDMA) network of ND-series VMs",
                  f"a private range outside {INFINIBAND_RESERVED}, e.g. 10.20.0.0/16")]


def check_pool_infiniband_islands(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A training cluster's islands are non-empty, cover its nodes and fit a single placement group."""
    if pool.role != "training":
        return []
    big = [n for n in pool.islands if n > SINGLE_PLACEMENT_GROUP_MAX_VMS]
    if not big and pool.islands and sum(pool.islands) == pool.nodes:
        return []
    return [Issue(f"{loc}.max_nodes_per_island",
                  f"InfiniBand islands {list(pool.islands)} must be non-empty, sum to "
                  f"{pool.nodes} nodes and hold at most {SINGLE_PLACEMENT_GROUP_MAX_VMS} VMs each",
                  f"max_nodes_per_island ≤ {SINGLE_PLACEMENT_GROUP_MAX_VMS} (100 without a quota raise)")]


class AzureProfile(CloudProfile):
    """Azure: InfiniBand in single-placement-group scale sets, capacity reservations, SSH-only VMs."""

    name = "azure"
    title = "Azure"
    fabrics = frozenset({"infiniband"})
    capacity_types = frozenset({"on_demand", "reservation"})
    needs_ssh_key = True
    site_checks = (check_site_vnet_clear_of_infiniband,)
    pool_checks = (check_pool_infiniband_islands,)
    image_forms = "publisher:offer:sku:version nor an image resource id"
    image_examples = f"{':'.join(HPC_IMAGE)}, or /subscriptions/.../images/..."

    def islands(self, nodes: int, max_nodes_per_island: int) -> tuple[int, ...]:
        """One island per single-placement-group scale set: InfiniBand links only VMs of one."""
        return split_islands(nodes, max_nodes_per_island)

    def image_is_valid(self, image: str) -> bool:
        return is_image_id(image) or len(image.split(":")) == 4

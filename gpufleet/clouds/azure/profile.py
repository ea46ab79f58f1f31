"""Azure as gpufleet knows it: InfiniBand islands, reservations, images, the metric path, identifiers.

Every fact and refusal here cites the Azure page it comes from (read 2026-11); each refusal is a
named check (``check_site_*`` / ``check_pool_*``) that :mod:`gpufleet.checks` runs before any
resource exists. docs/components.md lists the same rules with the same sources.

Sources:

* InfiniBand links only VMs of one scale set in a single placement group (≤ 100 VMs by default,
  ≤ 300 after a support request); the RDMA network reserves 172.16.0.0/16:
  https://learn.microsoft.com/azure/virtual-machines/setup-infiniband. A scale set with
  ``singlePlacementGroup: false`` "does not support InfiniBand networking"; one placement group
  holds 0–100 VMs, a scale set of several placement groups 0–1,000 (600 from custom images):
  https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups
* HPC images (publisher ``microsoft-dsvm``, offer ``ubuntu-hpc``) list only H-series and ND sizes as
  supported VM sizes: https://learn.microsoft.com/azure/virtual-machines/azure-hpc-vm-images; the
  SKU ``2204`` is the Ubuntu 22.04 URN Azure CycleCloud Workspace for Slurm offers
  (``microsoft-dsvm:ubuntu-hpc:2204:latest``): https://learn.microsoft.com/azure/cyclecloud/qs-deploy-ccws
* NC sizes: Azure's Linux driver guide installs the NVIDIA driver on Ubuntu with
  ``ubuntu-drivers install`` (Canonical-signed, works with Secure Boot):
  https://learn.microsoft.com/azure/virtual-machines/linux/n-series-driver-setup. The NVIDIA GPU
  Driver Extension documents CUDA drivers on Ubuntu 20.04 only, so gpufleet does not use it:
  https://learn.microsoft.com/azure/virtual-machines/extensions/hpccompute-gpu-linux
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpufleet.clouds.azure import aks
from gpufleet.clouds.base import CloudProfile, match_or_issue, split_islands
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

INFINIBAND = "infiniband"
"""The catalog's fabric value for Azure's InfiniBand sizes."""

INFINIBAND_RESERVED = ipaddress.ip_network("172.16.0.0/16")
"""Address range the InfiniBand (RDMA) network uses; a VNet must not overlap it."""

SINGLE_PLACEMENT_GROUP_MAX_VMS = 300
"""Largest single-placement-group scale set Azure allows (100 by default, 300 after a quota raise)."""

SCALE_SET_MAX_VMS = 1000
"""Largest scale set of several placement groups (Marketplace images; 600 from custom images)."""

ZONES = ("1", "2", "3")
"""Azure's logical availability zones of a region (https://learn.microsoft.com/azure/reliability/
availability-zones-overview): the same three names in every subscription."""


@dataclass(frozen=True)
class NodeImage:
    """A Marketplace image (``publisher:offer:sku:version``) and the cloud-init it boots with, if any."""

    publisher: str
    offer: str
    sku: str
    version: str
    cloud_init: str | None = None

    @property
    def urn(self) -> str:
        return f"{self.publisher}:{self.offer}:{self.sku}:{self.version}"


HPC_IMAGE = NodeImage("microsoft-dsvm", "ubuntu-hpc", "2204", "latest")
"""Ubuntu-HPC 22.04: InfiniBand (Mellanox OFED), NVIDIA driver, NCCL; documented for H-series and ND sizes."""

NVIDIA_DRIVER_CLOUD_INIT = """#cloud-config
package_update: true
packages:
  - ubuntu-drivers-common
runcmd:
  - [ubuntu-drivers, install]
power_state:
  mode: reboot
  message: NVIDIA driver installed by gpufleet
  condition: true
"""
"""Installs the NVIDIA driver the way Azure's Linux N-series guide does on Ubuntu, then reboots."""

GPU_UBUNTU_IMAGE = NodeImage("Canonical", "ubuntu-24_04-lts", "server", "latest", NVIDIA_DRIVER_CLOUD_INIT)
"""Ubuntu 24.04 LTS (Gen2, as NCads H100 v5 requires) plus the NVIDIA driver at first boot: the NC default."""

HPC_IMAGE_SIZES = re.compile(r"^Standard_(ND|HB|HC)", re.IGNORECASE)
"""Sizes the HPC images list as supported (ND, HB, HC families)."""


def default_image(instance_type: str) -> NodeImage:
    """The image a pool of ``instance_type`` boots when no override is given: HPC for H/ND, else Ubuntu."""
    return HPC_IMAGE if HPC_IMAGE_SIZES.match(instance_type) else GPU_UBUNTU_IMAGE


def default_resource_group(site_name: str) -> str:
    """The resource group gpufleet creates for a site that names none."""
    return f"gpufleet-{site_name}"


def resource_group(site: SiteSpec) -> str:
    """The site's resource group: its own, or :func:`default_resource_group`."""
    return site.resource_group or default_resource_group(site.name)


def is_image_id(image: str) -> bool:
    """True for an image resource id (``/subscriptions/...``); else it is ``publisher:offer:sku:version``."""
    return image.startswith("/")


# --- the autoscaling metric path ------------------------------------------------------------------------
# Custom metrics are posted to https://<region>.monitoring.azure.com/<resource id>/metrics, the regional
# endpoint of the resource's own region, with an Entra token for https://monitoring.azure.com/ whose
# identity holds Monitoring Metrics Publisher on that resource; namespaces, names, dimension keys and
# values are at most 256 characters, a name has no spaces, at most 10 dimensions:
# https://learn.microsoft.com/azure/azure-monitor/metrics/metrics-store-custom-rest-api and
# https://learn.microsoft.com/azure/azure-monitor/metrics/metrics-custom-overview. The role's id:
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/monitor#monitoring-metrics-publisher

MONITORING_METRICS_PUBLISHER_ROLE = "3913510d-42f4-4e42-8a64-420c390055eb"
"""Built-in role id of Monitoring Metrics Publisher."""

CUSTOM_METRIC_MAX_CHARS = 256
"""Longest custom metric namespace or name Azure Monitor accepts."""

METRICS_TOKEN_AUDIENCE = "https://monitoring.azure.com/"
"""Audience of the Entra token a publisher presents (trailing slash included)."""


def metrics_endpoint(region: str) -> str:
    """The regional Azure Monitor endpoint custom metrics about a resource in ``region`` go to."""
    return f"https://{region}.monitoring.azure.com"


def metrics_ingestion_url(region: str, resource_id: str) -> str:
    """Where a VM posts a custom metric about ``resource_id`` (a resource in ``region``)."""
    return f"{metrics_endpoint(region)}{resource_id}/metrics"


def role_definition_id(scope_id: str, role: str = MONITORING_METRICS_PUBLISHER_ROLE) -> str:
    """The role definition id of a built-in role in the subscription of ``scope_id`` (an ARM id)."""
    parts = scope_id.split("/")
    subscription = parts[2] if len(parts) > 2 and parts[1].lower() == "subscriptions" else ""
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def egress_reasons(pools: Sequence[PoolPlan]) -> list[str]:
    """Why a site's VNet needs outbound access (empty: it needs none).

    New VNets no longer get default outbound access (subnets are private, ``defaultOutboundAccess:
    false``, for API versions after 2026-03-31): https://learn.microsoft.com/azure/virtual-network/
    ip-services/default-outbound-access. Azure Monitor Private Link scopes connect Log Analytics
    workspaces, Application Insights components and data collection endpoints, not the custom
    metrics endpoint (https://learn.microsoft.com/azure/azure-monitor/logs/private-link-configure), so
    a site with any reason gets a NAT gateway.
    """
    reasons = []
    for pool in sorted(pools, key=lambda p: p.name):
        if pool.platform == aks.KUBERNETES:
            continue  # an AKS cluster's own load balancer carries its nodes' outbound traffic
        if pool.role == "inference":
            reasons.append(f"{pool.name} posts its scaling metric to {metrics_endpoint(pool.region)}")
        elif default_image(pool.instance_type).cloud_init:
            reasons.append(f"{pool.name} installs the NVIDIA driver from Ubuntu's archive at first boot")
    return reasons


# --- zonal stacks ---------------------------------------------------------------------------------------
# A NAT gateway is zonal: one serving VMs in several zones loses every VM's outbound path when its own
# zone fails. Azure's design for zone resilience is a "zonal stack" per zone: a NAT gateway and its
# public IP in that zone, and a subnet attached to it holding only that zone's VMs
# (https://learn.microsoft.com/azure/nat-gateway/nat-availability-zones). The zone-redundant
# StandardV2 NAT SKU (https://learn.microsoft.com/azure/reliability/reliability-nat-gateway) is not in
# the installed azure-native's NAT gateway API (its NatGatewaySkuName has only Standard), so a site
# whose pools need outbound access gets zonal stacks, and a serving pool one scale set per zone.

ZONE_SUBNET_BITS = 2
"""With zonal stacks the VNet is split in four: one subnet per zone (Azure regions have three)."""


def zonal_stacks(pools: Sequence[PoolPlan]) -> bool:
    """True when the site's VMs need outbound access (:func:`egress_reasons`), so each zone gets its own
    NAT gateway, public IP and subnet."""
    return bool(egress_reasons(pools))


def node_subnets(site: SiteSpec, pools: Sequence[PoolPlan], *, zonal: bool | None = None) -> dict[str, str]:
    """Zone → the CIDR of the subnet its VMs join: the VNet's first half for every zone, or with
    :func:`zonal_stacks` one quarter of the VNet per zone, in the site's zone order. ``zonal``: that
    answer when the caller already has it (None: worked out from ``pools``)."""
    net = ipaddress.ip_network(site.network_cidr)
    bits = ZONE_SUBNET_BITS if (zonal_stacks(pools) if zonal is None else zonal) else 1
    parts = list(net.subnets(prefixlen_diff=bits)) if net.prefixlen <= 32 - bits else [net]
    if bits == 1:
        return {zone: str(parts[0]) for zone in site.zones}
    return {zone: str(parts[min(i, len(parts) - 1)]) for i, zone in enumerate(site.zones)}


def zone_bounds(total: int, caps: Mapping[str, int]) -> dict[str, int]:
    """``total`` nodes split over zones in proportion to ``caps`` (largest remainder, never above a cap):
    a serving pool's per-zone scale set bounds."""
    whole = sum(caps.values())
    if whole <= 0 or total <= 0:
        return dict.fromkeys(caps, 0)
    total = min(total, whole)
    shares = {z: total * c / whole for z, c in caps.items()}
    out = {z: int(v) for z, v in shares.items()}
    for z in sorted(caps, key=lambda z: (-(shares[z] - out[z]), list(caps).index(z))):
        if sum(out.values()) >= total:
            break
        if out[z] < caps[z]:
            out[z] += 1
    return out


# --- capacity reservations ---------------------------------------------------------------------------
# https://learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview, "Limitations and
# restrictions": ND-series, NCads H100 v5, HB and HC series cannot be reserved; proximity placement
# groups and scale sets with single placement group set to true are unsupported deployment constraints.

RESERVATION_UNSUPPORTED_SERIES = (
    ("ND-series", re.compile(r"^Standard_ND", re.IGNORECASE)),
    ("NCads H100 v5-series", re.compile(r"^Standard_NC\d+adi?s_H100_v5$", re.IGNORECASE)),
    ("HB/HC-series", re.compile(r"^Standard_H[BC]", re.IGNORECASE)),
)


def reservation_unsupported_series(instance_type: str) -> str | None:
    """The series Azure lists as not reservable that ``instance_type`` belongs to, or None."""
    return next((name for name, pattern in RESERVATION_UNSUPPORTED_SERIES if pattern.match(instance_type)), None)


# --- named checks: identifiers (the site's fields as Azure names them) -------------------------------

REGION_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,39}$")
"""Programmatic region names as ``az account list-locations`` prints them (``eastus2``, ``swedencentral``).
Azure publishes no pattern for them; this one is their observed form."""
SUBSCRIPTION_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
"""A subscription id is a GUID."""
RESOURCE_GROUP_MAX_CHARS = 90
RESOURCE_GROUP_FORM = ("1–90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.' "
                       "(https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules)")


def check_site_region_name(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The region is a programmatic Azure region name (lowercase letters and digits, e.g. ``eastus2``)."""
    return match_or_issue(site.region, REGION_PATTERN, f"{loc}.region", "an Azure region name",
                          "the name `az account list-locations --query [].name` prints, e.g. eastus2 (not 'East US 2')")


def check_site_zones(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """Every zone is one of Azure's logical zones ``1``, ``2``, ``3``."""
    return [Issue(f"{loc}.zones[{i}]", f"{zone!r} is not an Azure availability zone",
                  f"{', '.join(ZONES)} (Azure's logical zones; not all regions have zones)")
            for i, zone in enumerate(site.zones) if zone not in ZONES]


def check_site_subscription_id(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """A subscription id, when given, is a GUID."""
    return match_or_issue(site.subscription_id, SUBSCRIPTION_PATTERN, f"{loc}.subscription_id",
                          "a subscription id", "e.g. 00000000-0000-0000-0000-000000000000", form="a GUID")


def _resource_group_char(ch: str) -> bool:
    return ch in "_-.()" or unicodedata.category(ch) in {"Lu", "Ll", "Lt", "Lm", "Lo", "Nd"}


def check_site_resource_group(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The resource group name follows Azure's naming rules for ``Microsoft.Resources/resourcegroups``."""
    name = resource_group(site)
    if (0 < len(name) <= RESOURCE_GROUP_MAX_CHARS and not name.endswith(".")
            and all(_resource_group_char(ch) for ch in name)):
        return []
    return [Issue(f"{loc}.resource_group", f"{name!r} is not a valid Azure resource group name", RESOURCE_GROUP_FORM)]


VNET_RESERVED = tuple(ipaddress.ip_network(n) for n in (
    "224.0.0.0/4", "255.255.255.255/32", "127.0.0.0/8", "169.254.0.0/16", "168.63.129.16/32", "0.0.0.0/8"))
"""Ranges Azure does not allow in a VNet (multicast, broadcast, loopback, link-local, its internal DNS;
https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq), and 0.0.0.0/8 ("this network")."""
SUBNET_PREFIXES = (2, 29)
"""Azure subnets are /2 to /29 (same FAQ); gpufleet's node subnet is half the VNet (one bit longer), or
with zonal stacks a quarter per zone (:func:`node_subnets`)."""


def check_site_vnet_range(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The VNet range is no range Azure reserves, and its node subnets (:func:`node_subnets`) are /2 to /29."""
    net = ipaddress.ip_network(site.network_cidr)
    longest = net.prefixlen + (ZONE_SUBNET_BITS if zonal_stacks(pools) else 1)
    reserved = [str(r) for r in VNET_RESERVED if net.overlaps(r)]
    low, high = SUBNET_PREFIXES
    issues = []
    if reserved:
        issues.append(Issue(f"{loc}.network_cidr", f"VNet range {site.network_cidr} overlaps {', '.join(reserved)}, "
                            "which Azure does not allow in a virtual network (loopback, link-local, multicast, "
                            "broadcast or its internal DNS address)", "an RFC 1918 range such as 10.20.0.0/16"))
    if not low <= longest <= high:
        extra = longest - net.prefixlen
        issues.append(Issue(f"{loc}.network_cidr", f"VNet range {site.network_cidr} gives a /{longest} node "
                            f"subnet; Azure subnets are /{low} to /{high}", f"/{low - extra} to /{high - extra}"))
    return issues


SUBNET_RESERVED_ADDRESSES = 5
"""Azure keeps the first four and the last address of every subnet (same FAQ)."""


def check_site_subnet_holds_the_pools(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """Each node subnet (:func:`node_subnets`) has an address for every VM its zones run at full size."""
    subnets = node_subnets(site, pools)
    if ipaddress.ip_network(site.network_cidr).prefixlen >= 32:
        return []  # check_site_vnet_range reports it
    vms_in: dict[str, int] = {}
    for pool in pools:
        for zone, nodes in (pool.nodes_by_zone or {pool.zones[0]: pool.nodes}).items():
            cidr = subnets.get(zone, next(iter(subnets.values())))
            vms_in[cidr] = vms_in.get(cidr, 0) + nodes
    issues = []
    extra = ipaddress.ip_network(next(iter(subnets.values()))).prefixlen - ipaddress.ip_network(site.network_cidr).prefixlen
    for cidr, vms in vms_in.items():
        prefix = ipaddress.ip_network(cidr).prefixlen
        usable = 2 ** (32 - prefix) - SUBNET_RESERVED_ADDRESSES
        if vms > usable:
            issues.append(Issue(
                f"{loc}.network_cidr", f"the node subnet {cidr} of {site.network_cidr} (a /{prefix}) has {usable} "
                f"usable addresses, but the site's VMs in it run {vms} at full size",
                f"a VNet of /{max(1, 32 - (vms + SUBNET_RESERVED_ADDRESSES - 1).bit_length() - extra)} or larger"))
    return issues


def check_site_vnet_clear_of_infiniband(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The site's VNet does not overlap :data:`INFINIBAND_RESERVED` (ND-series RDMA network)."""
    if not ipaddress.ip_network(site.network_cidr).overlaps(INFINIBAND_RESERVED):
        return []
    return [Issue(f"{loc}.network_cidr",
                  f"VNet range {site.network_cidr} overlaps {INFINIBAND_RESERVED}, which Azure reserves "
                  "for the InfiniBand (RDMA) network of ND-series VMs",
                  f"a private range outside {INFINIBAND_RESERVED}, e.g. 10.20.0.0/16")]


# --- named checks: pools ------------------------------------------------------------------------------


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


def check_pool_one_island_unless_allowed(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A training cluster larger than one InfiniBand island opts in with ``allow_multiple_islands``.

    Each single-placement-group scale set is one RDMA island; between islands traffic is Ethernet
    (the scale-set placement-group page: InfiniBand only inside one placement group).
    """
    if pool.role != "training" or len(pool.islands) <= 1 or pool.allow_multiple_islands:
        return []
    size = pool.max_nodes_per_island or max(pool.islands)
    return [Issue(f"{loc}.allow_multiple_islands",
                  f"{pool.nodes}-node {row.instance_type} cluster needs {len(pool.islands)} InfiniBand islands "
                  f"({'+'.join(map(str, pool.islands))} VMs; one island holds at most {size} VMs), and traffic "
                  "between islands is Ethernet, not InfiniBand",
                  "allow_multiple_islands: true if the run tolerates Ethernet between islands; or at most "
                  f"{size} nodes; or max_nodes_per_island up to {SINGLE_PLACEMENT_GROUP_MAX_VMS} after a quota raise")]


def check_pool_capacity_reservation_supported(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A training cluster consuming an on-demand capacity reservation uses none of what Azure lists as
    unsupported: its size series (ND, NCads H100 v5, HB, HC), a single-placement-group scale set
    (every InfiniBand island is one) or a proximity placement group."""
    if pool.role != "training" or pool.capacity_type != "reservation":
        return []
    reasons = []
    series = reservation_unsupported_series(pool.instance_type)
    if series:
        reasons.append(f"{series} sizes such as {pool.instance_type} cannot be reserved")
    if row.fabric == INFINIBAND:
        reasons.append("an InfiniBand cluster is a scale set with singlePlacementGroup: true")
    if pool.placement_group:
        reasons.append("placement_group: true launches into a proximity placement group")
    if not reasons:
        return []
    return [Issue(f"{loc}.capacity.type",
                  f"capacity type 'reservation' (Azure on-demand capacity reservation) cannot serve "
                  f"{pool.name}: {'; '.join(reasons)}, all listed as unsupported for capacity reservations",
                  "capacity.type: on_demand, keeping the cluster's VMs allocated between runs (a deallocated VM "
                  "gives its capacity back); reservations fit single-node sizes such as NC A100 v4 with "
                  "placement_group: false")]


def check_pool_autoscale_metric_path(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """An inference pool's scaling metric is one Azure Monitor accepts as a custom metric: a namespace
    and a name of 1–256 characters, no control characters, and no whitespace in the name. (On AKS the
    service scales on its Prometheus query instead.)"""
    if pool.role != "inference" or pool.platform == aks.KUBERNETES:
        return []
    issues = []
    for field, value, spaces in (("metric_namespace", pool.scaling_metric_namespace, True),
                                 ("metric_name", pool.scaling_metric_name, False)):
        bad = [ch for ch in value if unicodedata.category(ch).startswith("C") or (not spaces and ch.isspace())]
        if 0 < len(value) <= CUSTOM_METRIC_MAX_CHARS and not bad:
            continue
        issues.append(Issue(f"{loc}.scaling.{field}",
                            f"{value!r} cannot be published as an Azure Monitor custom metric {field.split('_')[1]}, "
                            f"so the autoscaler of {pool.name} would never see it",
                            f"1–{CUSTOM_METRIC_MAX_CHARS} characters, no control characters"
                            + ("" if spaces else ", no spaces")))
    return issues


def check_pool_scale_set_size(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """An inference pool's maximum fits one scale set of several placement groups (1,000 VMs)."""
    if pool.role != "inference" or pool.nodes <= SCALE_SET_MAX_VMS:
        return []
    return [Issue(f"{loc}.instance_types", f"pool {pool.name} scales to {pool.nodes} VMs; one Azure scale set "
                  f"holds at most {SCALE_SET_MAX_VMS} (600 from a custom image)",
                  "more sites for the service, or a larger instance type")]


class AzureProfile(CloudProfile):
    """Azure: InfiniBand in single-placement-group scale sets, capacity reservations, SSH-only VMs."""

    name = "azure"
    title = "Azure"
    fabrics = frozenset({INFINIBAND})
    capacity_types = frozenset({"on_demand", "reservation"})
    needs_ssh_key = True
    site_checks = (check_site_region_name, check_site_zones, check_site_subscription_id, check_site_resource_group,
                   check_site_vnet_range, check_site_subnet_holds_the_pools, check_site_vnet_clear_of_infiniband,
                   *aks.SITE_CHECKS)
    pool_checks = (check_pool_infiniband_islands, check_pool_one_island_unless_allowed,
                   check_pool_capacity_reservation_supported, check_pool_autoscale_metric_path,
                   check_pool_scale_set_size, *aks.POOL_CHECKS)
    image_forms = "publisher:offer:sku:version nor an image resource id"
    image_examples = f"{HPC_IMAGE.urn}, or /subscriptions/.../images/..."

    def islands(self, nodes: int, max_nodes_per_island: int) -> tuple[int, ...]:
        """One island per single-placement-group scale set: InfiniBand links only VMs of one."""
        return split_islands(nodes, max_nodes_per_island)

    def image_is_valid(self, image: str) -> bool:
        return is_image_id(image) or len(image.split(":")) == 4

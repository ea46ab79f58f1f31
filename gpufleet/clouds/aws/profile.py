"""AWS as gpufleet knows it: EFA layout, capacity types, zone subnets, images, resource types.

Sources (read 2026-11):

* EFA interface layout: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html
  (primary ENA ``interface`` at network card 0 / device 0; ``efa-only`` at card 0 / device 1 when
  card 0 carries EFA; ``efa-only`` at device 0 of every other card).
* Capacity Blocks and On-Demand Capacity Reservations:
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/capacity-blocks.html
* Deep Learning Base AMIs through public SSM parameters:
  https://docs.aws.amazon.com/dlami/latest/devguide/find-dlami-id.html
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from gpufleet.clouds.base import CloudProfile
from gpufleet.errors import Issue

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType
    from gpufleet.plan import PoolPlan
    from gpufleet.spec import SiteSpec

# --- resource type tokens (what the components create and the pack reads) ----------------------------

ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
PLACEMENT_GROUP = "aws:ec2/placementGroup:PlacementGroup"
INSTANCE = "aws:ec2/instance:Instance"

# --- addressing --------------------------------------------------------------------------------------

ZONE_SUBNET_BITS = 3
"""Each zone's subnet is the site's ``network_cidr`` lengthened by this many bits."""
MAX_ZONES = 2**ZONE_SUBNET_BITS
"""Zone subnets a site's ``network_cidr`` holds."""

# --- EFA ---------------------------------------------------------------------------------------------

InterfaceKind = Literal["interface", "efa-only"]


def efa_layout(row: InstanceType) -> list[tuple[int, int, InterfaceKind]]:
    """(network card, device index, interface type) of every interface a training node gets.

    The primary ENA interface sits at card 0 / device 0. The EFA cards are the last
    ``fabric_interfaces`` cards (all of them on p5/p5e/p5en/p6-b200; cards 1-16 on p6-b300, whose
    card 0 is ENA-only). An EFA on card 0 goes to device 1; on every other card to device 0.
    """
    layout: list[tuple[int, int, InterfaceKind]] = [(0, 0, "interface")]
    if row.fabric != "efa" or row.fabric_interfaces <= 0:
        return layout
    first = max(row.network_cards - row.fabric_interfaces, 0)
    for card in range(first, first + row.fabric_interfaces):
        layout.append((card, 1 if card == 0 else 0, "efa-only"))
    return layout


# --- images ------------------------------------------------------------------------------------------

_BLACKWELL = {"B200", "B300", "GB200", "GB300"}
_NEURON = ("Trainium", "Inferentia")


def dlami_parameter(row: InstanceType) -> str:
    """The public SSM parameter of the Deep Learning Base AMI for the instance's accelerator generation."""
    if row.gpu.startswith(_NEURON):
        return "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id"
    arch = "arm64" if row.gpu in {"GB200", "GB300"} else "x86_64"
    release = "ubuntu-24.04" if row.gpu in _BLACKWELL else "ubuntu-22.04"
    return f"/aws/service/deeplearning/ami/{arch}/base-oss-nvidia-driver-gpu-{release}/latest/ami-id"


def is_ami_id(image: str) -> bool:
    """True for an AMI id (``ami-...``); any other accepted image is an SSM parameter name."""
    return image.startswith("ami-")


# --- named checks ------------------------------------------------------------------------------------


def check_site_zone_count(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """A site lists at most :data:`MAX_ZONES` zones: one subnet each is carved from its network_cidr."""
    if len(site.zones) <= MAX_ZONES:
        return []
    return [Issue(f"{loc}.zones", f"{len(site.zones)} zones; gpufleet carves at most {MAX_ZONES} zone subnets "
                  "from network_cidr", f"at most {MAX_ZONES} zones per AWS site")]


def check_pool_efa_cards(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A training instance type lists no more EFA interfaces than network cards (one EFA per card)."""
    if pool.role == "training" and row.fabric == "efa" and row.fabric_interfaces > row.network_cards:
        return [Issue(f"{loc}.instance_types",
                      f"catalog row {row.instance_type} lists {row.fabric_interfaces} EFA interfaces "
                      f"but {row.network_cards} network cards (one EFA per card)",
                      "fix the catalog row")]
    return []


class AwsProfile(CloudProfile):
    """EC2: EFA fabric, On-Demand Capacity Reservations and Capacity Blocks, AMIs or SSM parameters."""

    name = "aws"
    title = "AWS"
    fabrics = frozenset({"efa"})
    capacity_types = frozenset({"on_demand", "odcr", "capacity_block"})
    site_checks = (check_site_zone_count,)
    pool_checks = (check_pool_efa_cards,)
    image_forms = "an AMI id nor an SSM parameter name"
    image_examples = ("ami-0123456789abcdef0, or a public SSM parameter such as "
                      "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id")
    name_tag = "Name"

    def fabric_interfaces(self, row: InstanceType) -> int:
        return sum(1 for _, _, kind in efa_layout(row) if kind == "efa-only")

    def image_is_valid(self, image: str) -> bool:
        return is_ami_id(image) or image.startswith("/")

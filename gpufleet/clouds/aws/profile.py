"""AWS as gpufleet knows it: EFA layout, capacity types, zone subnets, images, resource types,
identifiers, warm pools and the path of the autoscaling metric.

Sources (read 2026-11; each named check's docstring says which rule it encodes and where):

* EFA interface layout: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html
  (primary ENA ``interface`` at network card 0 / device 0; ``efa-only`` at card 0 / device 1 when
  card 0 carries EFA; ``efa-only`` at device 0 of every other card). Trainium follows the same rule:
  trn1.32xlarge has 8 EFA devices on 8 network cards, trn2.48xlarge 16 on 16 (EC2
  DescribeInstanceTypes; https://awsdocs-neuron.readthedocs-hosted.com/en/latest/frameworks/torch/torch-neuronx/setup-trn1-multi-node-execution.html
  "trn1.32xlarge has 8 EFA devices"), in a cluster placement group like p5.
* Capacity Blocks and On-Demand Capacity Reservations:
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/capacity-blocks.html
* Deep Learning Base AMIs through public SSM parameters:
  https://docs.aws.amazon.com/dlami/latest/devguide/find-dlami-id.html
* Region codes: the partitions' ``regionRegex`` of the AWS SDKs' partition metadata
  (https://github.com/boto/botocore/blob/develop/botocore/data/partitions.json); zone names:
  https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html
* VPC ranges: https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html
* Warm pool size: https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html
* The metric path: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html,
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-interface-VPC.html,
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

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
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
IAM_ROLE = "aws:iam/role:Role"
INSTANCE_PROFILE = "aws:iam/instanceProfile:InstanceProfile"

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
    ``fabric_interfaces`` cards (all of them on p5/p5e/p5en/p6-b200, trn1.32xlarge (8) and
    trn2.48xlarge (16); cards 1-16 on p6-b300, whose card 0 is ENA-only). An EFA on card 0 goes to device 1; on every other card to device 0.
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
_NEURON = ("trainium", "inferentia")


def dlami_parameter(row: InstanceType) -> str:
    """The public SSM parameter of the Deep Learning Base AMI for the instance's accelerator generation
    (the Neuron multi-framework DLAMI for Trainium chips)."""
    if row.gpu.lower().startswith(_NEURON):
        return "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id"
    arch = "arm64" if row.gpu in {"GB200", "GB300"} else "x86_64"
    release = "ubuntu-24.04" if row.gpu in _BLACKWELL else "ubuntu-22.04"
    return f"/aws/service/deeplearning/ami/{arch}/base-oss-nvidia-driver-gpu-{release}/latest/ami-id"


def is_ami_id(image: str) -> bool:
    """True for an AMI id (``ami-...``); any other accepted image is an SSM parameter name."""
    return image.startswith("ami-")


# --- identifiers -------------------------------------------------------------------------------------

REGION_PATTERNS: dict[str, str] = {
    "aws": r"(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-[0-9]+",
    "aws-cn": r"cn-[a-z]+-[0-9]+",
    "aws-us-gov": r"us-gov-[a-z]+-[0-9]+",
    "aws-iso": r"us-iso-[a-z]+-[0-9]+",
    "aws-iso-b": r"us-isob-[a-z]+-[0-9]+",
    "aws-iso-e": r"eu-isoe-[a-z]+-[0-9]+",
    "aws-iso-f": r"us-isof-[a-z]+-[0-9]+",
    "aws-eusc": r"eusc-de-[a-z]+-[0-9]+",
}
"""Region codes of each AWS partition: the ``regionRegex`` of botocore's ``partitions.json``, with
``\\w`` narrowed to lowercase ASCII letters (every region code is lowercase)."""
REGION_PATTERN_TEXT = "^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-[0-9]+$"
"""The commercial partition's pattern, as messages show it."""
AZ_ID = re.compile(r"[a-z]{2,6}[0-9]+-az[0-9]+")
"""The shape of an AZ ID (``use1-az1``), which the site's ``zones`` do not take."""

VPC_PREFIX_RANGE = (16, 28)
"""Netmask lengths an AWS VPC's IPv4 block may have (/16 = 65,536 addresses down to /28 = 16)."""
UNUSABLE_RANGES = {
    "loopback": ipaddress.ip_network("127.0.0.0/8"),
    "link-local": ipaddress.ip_network("169.254.0.0/16"),
}
"""Ranges no VPC can use: link-local is reserved (RFC 5735) and refused for VPCs; loopback never
leaves a host (RFC 1122)."""
DOCKER_BRIDGE = ipaddress.ip_network("172.17.0.0/16")
"""Used by some AWS services and by Docker's default bridge on the node images; the VPC user guide
says not to use it for a VPC."""


def region_partition(region: str) -> str | None:
    """The AWS partition whose region codes ``region`` matches (``aws``, ``aws-cn``, ...), or None."""
    return next((name for name, pattern in REGION_PATTERNS.items() if re.fullmatch(pattern, region)), None)


def is_zone_of(zone: str, region: str) -> bool:
    """True when ``zone`` is an Availability Zone name of ``region``: the region code and one letter."""
    return re.fullmatch(re.escape(region) + "[a-z]", zone) is not None


# --- warm pools ---------------------------------------------------------------------------------------


def warm_pool_size(desired: int, max_size: int, *, min_size: int | None = None,
                   max_prepared: int | None = None) -> int:
    """Instances EC2 Auto Scaling keeps in a group's warm pool while the group runs ``desired``.

    PutWarmPool: without ``MaxGroupPreparedCapacity`` the pool holds the group's maximum minus its
    desired capacity; with it, ``MaxGroupPreparedCapacity`` minus the desired capacity (0 once the
    desired capacity is higher), and never fewer than ``MinSize``. -1 removes a prepared capacity.
    """
    ceiling = max_size if max_prepared is None or max_prepared < 0 else max_prepared
    return max(min_size or 0, ceiling - desired, 0)


def warm_pool_limits(warm: int) -> tuple[int, int]:
    """``(MinSize, MaxGroupPreparedCapacity)`` of a warm pool holding exactly ``warm`` instances at
    every desired capacity: PutWarmPool gives a warm pool an absolute size only when the two are
    equal (any other pair lets the pool follow the desired capacity)."""
    return warm, warm


LAUNCH_HOOK_NAME = "gpufleet-boot"
"""The launch lifecycle hook a group with a warm pool carries."""
LAUNCH_HOOK_TRANSITION = "autoscaling:EC2_INSTANCE_LAUNCHING"
LAUNCH_HOOK_DEFAULT_RESULT = "ABANDON"
"""What Auto Scaling does when the hook times out: PutLifecycleHook's default, ``ABANDON``, so an
instance that never reported its boot finished is terminated and replaced, not stopped into the warm
pool (or put in service) half-initialised."""
HEARTBEAT_TIMEOUT_S = (30, 7200)
"""PutLifecycleHook's ``HeartbeatTimeout`` range, seconds (an instance that needs longer records a
heartbeat, ``RecordLifecycleActionHeartbeat``, which restarts the timeout)."""
LIFECYCLE_ACTIONS = ("autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat")
"""What an instance calls on its own group's launch hook."""


def launch_hook_timeout_s(boot_minutes: float) -> int:
    """The launch hook's heartbeat timeout: the pool's boot minutes, within :data:`HEARTBEAT_TIMEOUT_S`.

    Instances launching into a warm pool are stopped as soon as they finish launching; Auto Scaling
    does not wait for user data, so a driver install or model download still running is cut off. An
    ``autoscaling:EC2_INSTANCE_LAUNCHING`` hook holds each instance in ``Warmed:Pending:Wait`` (and,
    leaving the pool, in ``Pending:Wait``) until it calls ``CompleteLifecycleAction`` or the timeout
    passes (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html,
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutLifecycleHook.html).
    """
    low, high = HEARTBEAT_TIMEOUT_S
    return min(max(math.ceil(boot_minutes * 60), low), high)


def launch_hook_note(boot_minutes: float) -> str:
    """What the instances of a group with a warm pool must do, for the pool's notes."""
    timeout = launch_hook_timeout_s(boot_minutes)
    return (f"warm pool with launch lifecycle hook {LAUNCH_HOOK_NAME} ({LAUNCH_HOOK_TRANSITION}, heartbeat "
            f"timeout {timeout} s from boot_minutes, default result {LAUNCH_HOOK_DEFAULT_RESULT}): each instance "
            "must run `aws autoscaling complete-lifecycle-action --lifecycle-action-result CONTINUE "
            f"--lifecycle-hook-name {LAUNCH_HOOK_NAME} --auto-scaling-group-name <its group> --instance-id "
            "<its id>` once its driver, image and model are ready, on first boot and again each time it "
            "leaves the warm pool (record-lifecycle-action-heartbeat to take longer); an instance that does "
            f"not is terminated after {timeout} s")


def lifecycle_action_policy(group_arn: str) -> str:
    """Allow :data:`LIFECYCLE_ACTIONS` on one Auto Scaling group only (resource-level ARN)."""
    return _policy({"Effect": "Allow", "Action": list(LIFECYCLE_ACTIONS), "Resource": group_arn})


# --- the autoscaling metric path ------------------------------------------------------------------------

METRIC_DIMENSION = "AutoScalingGroupName"
"""The one dimension the serving process publishes its metric with (value: its group's name)."""
METRIC_PERIOD_S = 60
"""Period of the metric the target tracking policy reads (standard resolution)."""
METRIC_STATISTIC = "Average"
"""Statistic the policy tracks: the mean of all nodes' data points, i.e. per-node tokens/s."""
METRIC_UNIT = "Count/Second"
"""Unit the serving process publishes tokens/s with (documented; the policy reads any unit)."""
MONITORING_SERVICE = "monitoring"
"""CloudWatch's endpoint service (``com.amazonaws.<region>.monitoring``)."""
EC2_PRINCIPAL = "ec2.amazonaws.com"
"""The service principal that assumes an instance profile's role."""
IAM_NAME_PREFIX_MAX = 38
"""An IAM role name has at most 64 characters and the provider appends 26 to a ``name_prefix``."""
_NAMESPACE_MAX = 255


def endpoint_service_name(region: str, service: str) -> str:
    """The interface endpoint service of ``service`` in ``region`` (``com.amazonaws.us-east-1.monitoring``;
    China regions prefix ``cn.``, as ``DescribeVpcEndpointServices`` lists them there)."""
    prefix = "cn.com.amazonaws" if region_partition(region) == "aws-cn" else "com.amazonaws"
    return f"{prefix}.{region}.{service}"


def _policy(statement: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, sort_keys=True)


def trust_policy(service: str) -> str:
    """An IAM trust policy letting the AWS ``service`` principal (``ec2.amazonaws.com``, ``eks.amazonaws.com``)
    assume the role."""
    return _policy({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


def node_trust_policy() -> str:
    """The trust policy of a node role: EC2 instances (through their instance profile) assume it."""
    return trust_policy(EC2_PRINCIPAL)


def metric_publish_policy(namespace: str) -> str:
    """Allow ``cloudwatch:PutMetricData`` into ``namespace`` only (``cloudwatch:namespace`` condition key;
    PutMetricData supports no resource-level ARN, so the resource is ``*``)."""
    return _policy({"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}}})


def iam_name_prefix(name: str) -> str:
    """A ``name_prefix`` for an IAM role or instance profile of ``name`` (at most
    :data:`IAM_NAME_PREFIX_MAX` characters, ending in ``-``): the name itself, or its start and a digest
    of the whole when it is longer, so two pools never share a prefix."""
    if len(name) + 1 <= IAM_NAME_PREFIX_MAX:
        return f"{name}-"
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:IAM_NAME_PREFIX_MAX - 10]}-{digest}-"


def _metric_text_problem(text: str) -> str | None:
    """Why CloudWatch would refuse ``text`` as a namespace or metric name, or None."""
    if not 1 <= len(text) <= _NAMESPACE_MAX:
        return f"has {len(text)} characters (1 to {_NAMESPACE_MAX})"
    if any(not " " <= c <= "~" for c in text):
        return "holds a character that is not printable ASCII"
    if not text.strip():
        return "has no character other than spaces"
    return None


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


def check_site_region(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The region is an AWS region code: it matches the ``regionRegex`` of one partition in the AWS
    SDKs' partition metadata (botocore ``partitions.json``: ``us-east-1``, ``eu-central-2``,
    ``cn-north-1``, ``us-gov-west-1``, ...). Anything else (a typo, a newline, ``us-east-1; rm -rf /``)
    would reach the provider and the resource names."""
    if region_partition(site.region):
        return []
    return [Issue(f"{loc}.region", f"{site.region!r} is not an AWS region code (pattern {REGION_PATTERN_TEXT})",
                  "a region code such as us-east-1 or eu-central-2 (cn-, us-gov-, us-iso[bef]- and eusc-de- "
                  "regions follow the same shape)")]


def check_site_zones_in_region(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """Every zone is an Availability Zone name of the site's region: the region code followed by one
    letter (``us-east-1a``; https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html).
    Each zone gets a subnet with ``availability_zone=<zone>``, so a zone of another region, an AZ ID
    (``use1-az1``), a Local Zone or text with a newline would fail there. With an invalid region only
    the zones' shape is checked (the region's own issue says the rest)."""
    issues: list[Issue] = []
    region_ok = region_partition(site.region) is not None
    for i, zone in enumerate(site.zones):
        if is_zone_of(zone, site.region if region_ok else zone[:-1]) and region_partition(zone[:-1]):
            continue
        hint = (f"zone names of {site.region}: pattern ^{site.region}[a-z]$ ({site.region}a, "
                f"{site.region}b, ...)" if region_ok else "a region code followed by one letter, such as us-east-1a")
        if AZ_ID.fullmatch(zone):
            hint += "; AZ IDs are not accepted: `aws ec2 describe-availability-zones` gives the name of each ID"
        where = f"of region {site.region!r}" if region_ok else "name"
        issues.append(Issue(f"{loc}.zones[{i}]", f"{zone!r} is not an Availability Zone {where}", hint))
    return issues


def check_site_network_cidr(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The site's range is one an AWS VPC can have (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html):
    a /16 to /28 block; not link-local (169.254.0.0/16 is reserved and cannot be assigned to a VPC)
    nor loopback (127.0.0.0/8 never leaves a host); and not overlapping 172.17.0.0/16, which the guide
    says not to use because AWS services use it (it is also Docker's default bridge on the node images,
    so containers could not reach such nodes)."""
    net = ipaddress.ip_network(site.network_cidr, strict=False)
    where = f"{loc}.network_cidr"
    low, high = VPC_PREFIX_RANGE
    issues: list[Issue] = []
    if not low <= net.prefixlen <= high:
        issues.append(Issue(where, f"{net} is a /{net.prefixlen}; an AWS VPC's block is /{low} to /{high}",
                            f"a /{low} to /{high} private range such as 10.0.0.0/16"))
    for kind, reserved in UNUSABLE_RANGES.items():
        if net.overlaps(reserved):
            issues.append(Issue(where, f"{net} is {kind} ({reserved}), which no VPC can use",
                                "a private range such as 10.0.0.0/16"))
    if net.overlaps(DOCKER_BRIDGE):
        issues.append(Issue(where, f"{net} overlaps {DOCKER_BRIDGE}, which AWS services and Docker's default "
                            "bridge on the node images use (the VPC user guide says not to use it)",
                            "a range outside 172.17.0.0/16 such as 10.0.0.0/16"))
    return issues


def check_pool_metric_path(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """An inference pool's scaling metric is one CloudWatch accepts from its nodes
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Namespace):
    namespace and metric name of 1 to 255 printable ASCII characters with at least one that is not a
    space; a namespace neither starting with ``:`` nor with ``AWS/`` (reserved for AWS services). The
    nodes' role may publish only into that namespace (``cloudwatch:namespace`` condition), so a name
    CloudWatch refuses leaves the pool at its minimum for ever. (On Kubernetes the service scales on
    its Prometheus query instead.)"""
    if pool.role != "inference" or pool.platform == "kubernetes":
        return []
    issues: list[Issue] = []
    namespace, metric = pool.scaling_metric_namespace, pool.scaling_metric_name
    problem = _metric_text_problem(namespace)
    if problem is None and namespace.startswith(":"):
        problem = "starts with ':'"
    if problem is None and namespace.startswith("AWS/"):
        problem = "starts with 'AWS/', which CloudWatch reserves for AWS services"
    if problem:
        issues.append(Issue(f"{loc}.scaling.metric_namespace", f"CloudWatch namespace {namespace!r} {problem}",
                            "1-255 printable ASCII characters, not starting with ':' or 'AWS/' (e.g. gpufleet)"))
    problem = _metric_text_problem(metric)
    if problem:
        issues.append(Issue(f"{loc}.scaling.metric_name", f"CloudWatch metric name {metric!r} {problem}",
                            "1-255 printable ASCII characters (e.g. tokens_per_s)"))
    return issues


class AwsProfile(CloudProfile):
    """EC2: EFA fabric, On-Demand Capacity Reservations and Capacity Blocks, AMIs or SSM parameters."""

    name = "aws"
    title = "AWS"
    fabrics = frozenset({"efa"})
    capacity_types = frozenset({"on_demand", "odcr", "capacity_block"})
    kubernetes_attach_fields = ("cluster_name", "node_role_arn")  # EKS: CreateNodegroup takes clusterName + nodeRole
    site_checks = (check_site_region, check_site_zones_in_region, check_site_network_cidr, check_site_zone_count)
    pool_checks = (check_pool_efa_cards, check_pool_metric_path)
    image_forms = "an AMI id nor an SSM parameter name"
    image_examples = ("ami-0123456789abcdef0, or a public SSM parameter such as "
                      "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id")
    name_tag = "Name"

    def fabric_interfaces(self, row: InstanceType) -> int:
        return sum(1 for _, _, kind in efa_layout(row) if kind == "efa-only")

    def image_is_valid(self, image: str) -> bool:
        return is_ami_id(image) or image.startswith("/")

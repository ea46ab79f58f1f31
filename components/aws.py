"""AWS backend: VPC per site, EFA training clusters, autoscaled inference groups.

What AWS offers and refuses (the EFA layout, capacity types, zone subnets, image forms, default
images) is in :mod:`gpufleet.clouds.aws.profile`; this module builds it. Sources for the build
choices made here (read 2026-11):

* EFA security group: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-efa.html (all
  traffic to and from the group itself).
* An ODCR created in a cluster placement group serves only instances in that group and cannot move
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/cr-cpg.html): with ``placement_group_name``
  the cluster launches into that group and none is created. A reservation made outside any group
  also serves instances in a new group
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/limitations-placement-groups.html).
* Warm pool size: ``MinSize`` = ``MaxGroupPreparedCapacity`` = ``min_nodes`` (see
  :func:`gpufleet.clouds.aws.profile.warm_pool_limits`).
* Warm pools cannot be added to a group with a mixed instances policy:
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html
* A group with a warm pool carries an ``autoscaling:EC2_INSTANCE_LAUNCHING`` lifecycle hook from its
  creation (heartbeat timeout from the pool's ``boot_minutes``, default result ``ABANDON``): Auto
  Scaling stops an instance launching into a warm pool as soon as it has launched, without waiting for
  user data, so a boot still installing drivers or downloading the model would be cut off
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html). The node
  role may complete and extend that hook on its own group only; the instance must call
  ``complete-lifecycle-action`` when ready (:func:`gpufleet.clouds.aws.profile.launch_hook_note`, in
  the pool's notes).
* Spot in an inference group (``PoolPlan.spot_nodes``): one group with a mixed instances policy whose
  instances distribution launches ``OnDemandBaseCapacity`` = the plan's on-demand floor first and
  only spot above it (``OnDemandPercentageAboveBaseCapacity`` 0), spot allocation strategy
  ``price-capacity-optimized``, which AWS recommends for most spot workloads, and Capacity
  Rebalancing on, so the group replaces a spot instance at elevated risk of interruption before it is
  reclaimed (https://docs.aws.amazon.com/autoscaling/ec2/userguide/mixed-instances-groups-set-up-overview.html,
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/allocation-strategies.html,
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-capacity-rebalancing.html).
* The metric path of an inference pool: a node role that may only ``cloudwatch:PutMetricData`` into
  the pool's namespace (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html)
  through an instance profile, and in the site's VPC an interface endpoint for CloudWatch
  (``com.amazonaws.<region>.monitoring``) with private DNS, so nodes without internet access reach
  CloudWatch at its usual name (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-interface-VPC.html;
  private DNS needs the VPC's DNS support and hostnames, which the VPC enables). An endpoint, not a
  NAT gateway: the site networks stay private (no internet gateway, no public subnet, no egress to
  the internet), and the traffic stays on AWS's network. Instance tags are readable from the
  instance metadata so the serving process finds its group's name (``aws:autoscaling:groupName``).
"""

from __future__ import annotations

import ipaddress
import warnings
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

with warnings.catch_warnings():
    # pulumi_aws 7.51 warns, when ec2 is imported, about a deprecated class it still defines
    # (EncryptionControl); nothing here uses it. Load the modules with that one warning silenced.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws\.")
    # The SDK's submodules load lazily: touching a member is what imports them.
    _ = (aws.ec2.Vpc, aws.autoscaling.Group, aws.iam.Role, aws.ssm.get_parameter_output)

from components.base import CloudBackend, ClusterBuild, InferencePoolArgs, NetworkBuild, PoolBuild
from components.base import SiteNetworkArgs, TrainingClusterArgs, TrainingTarget, carve, child, invoke_opts, register
from gpufleet.catalog import InstanceType, load_catalog
from gpufleet.clouds.aws.profile import (
    LAUNCH_HOOK_DEFAULT_RESULT,
    LAUNCH_HOOK_NAME,
    LAUNCH_HOOK_TRANSITION,
    METRIC_DIMENSION,
    METRIC_PERIOD_S,
    METRIC_STATISTIC,
    MONITORING_SERVICE,
    ZONE_SUBNET_BITS,
    dlami_parameter,
    efa_layout,
    endpoint_service_name,
    iam_name_prefix,
    is_ami_id,
    launch_hook_note,
    launch_hook_timeout_s,
    lifecycle_action_policy,
    metric_publish_policy,
    node_trust_policy,
    warm_pool_limits,
)
from gpufleet.names import TAG_SITE
from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec

SPOT_ALLOCATION_STRATEGY = "price-capacity-optimized"
"""AWS's recommended spot allocation strategy: the lowest-priced pools with the most spare capacity."""

ROOT_VOLUME_GIB = 512
"""Encrypted gp3 root volume; the DLAMI needs ~100 GiB and containers and checkpoints need the rest."""


def resource_tags(tags: Mapping[str, str], name: str) -> dict[str, str]:
    """An AWS resource's tags: ``tags`` and its ``Name`` (the AWS profile's tag rules; the VM backend's and
    the EKS backend's resources alike)."""
    return AwsBackend.profile.resource_tags(tags, name)


def _group_tags(tags: Mapping[str, str], name: str) -> list[aws.autoscaling.GroupTagArgs]:
    return [aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True)
            for k, v in resource_tags(tags, name).items()]


def launch_template(owner: Any, name: str, pool: PoolPlan, root_device: str,
                    tagged: tuple[str, ...] = ("instance", "network-interface", "volume"), *,
                    metadata_tags: bool = False, **extra: Any) -> aws.ec2.LaunchTemplate:
    """A launch template of the pool's nodes (an ASG's or an EKS node group's): IMDSv2, an encrypted gp3
    root volume of :data:`ROOT_VOLUME_GIB` on ``root_device``, the pool's tags on the template and on the
    ``tagged`` resources it launches; ``extra``: the image, type, interfaces, placement, capacity."""
    return aws.ec2.LaunchTemplate(
        name,
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=2,
            instance_metadata_tags="enabled" if metadata_tags else None),
        block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name=root_device,
            ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                volume_size=ROOT_VOLUME_GIB, volume_type="gp3", encrypted="true", delete_on_termination="true"),
        )],
        tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=resource_tags(pool.tags, name))
                            for kind in tagged],
        tags=resource_tags(pool.tags, name),
        update_default_version=True,
        opts=child(owner),
        **extra,
    )


def interface_endpoint(owner: Any, name: str, vpc: aws.ec2.Vpc, site: SiteSpec, subnet_ids: list[pulumi.Input[str]],
                       tags: Mapping[str, str], service: str, title: str, purpose: str) -> aws.ec2.VpcEndpoint:
    """``service``'s interface endpoint in every zone subnet, private DNS on, HTTPS from the VPC only
    (``title`` names the service in its security group's description, ``purpose`` the traffic)."""
    sg = aws.ec2.SecurityGroup(
        f"{name}-sg", vpc_id=vpc.id, description=f"{title} endpoint: HTTPS from inside the VPC",
        ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=443, to_port=443,
                                                  cidr_blocks=[site.network_cidr], description=purpose)],
        tags=resource_tags(tags, f"{name}-sg"), opts=child(owner))
    return aws.ec2.VpcEndpoint(
        name, vpc_id=vpc.id, vpc_endpoint_type="Interface",
        service_name=endpoint_service_name(site.region, service),
        private_dns_enabled=True, subnet_ids=subnet_ids, security_group_ids=[sg.id],
        tags=resource_tags(tags, name), opts=child(owner))


def efa_security_group(owner: Any, name: str, vpc_id: pulumi.Input[str], tags: Mapping[str, str]) -> aws.ec2.SecurityGroup:
    """The EFA group: all traffic to and from its own members, nothing else."""
    return aws.ec2.SecurityGroup(
        name, vpc_id=vpc_id,
        description="EFA: all traffic to and from members of this group, nothing else",
        ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="-1", from_port=0, to_port=0, self=True,
                                                  description="all traffic from the cluster itself")],
        egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, self=True,
                                                description="all traffic to the cluster itself")],
        tags=resource_tags(tags, name), opts=child(owner))


def efa_interfaces(row: InstanceType, efa_group: pulumi.Input[str],
                   primary_groups: list[pulumi.Input[str]]) -> list[aws.ec2.LaunchTemplateNetworkInterfaceArgs]:
    """Every network card of ``row`` as the AWS profile lays them out (:func:`efa_layout`): the
    primary interface in ``primary_groups``, each EFA(-only) interface in the EFA group."""
    return [
        aws.ec2.LaunchTemplateNetworkInterfaceArgs(
            network_card_index=card, device_index=device, interface_type=kind,
            security_groups=primary_groups if kind == "interface" else [efa_group],
            delete_on_termination="true",
            associate_public_ip_address="false" if kind == "interface" else None,
        )
        for card, device, kind in efa_layout(row)
    ]


def placement_and_capacity(owner: Any, name: str, pool: PoolPlan) -> tuple[dict[str, Any], list[pulumi.Input[str]],
                                                                          pulumi.Input[str] | None]:
    """A training pool's launch template settings for its placement group and capacity (ODCR,
    Capacity Block), the placement ids to report, and the cluster placement group's name (None:
    none)."""
    extra: dict[str, Any] = {}
    placement_ids: list[pulumi.Input[str]] = []
    group_name: pulumi.Input[str] | None = None
    if pool.placement_group and pool.placement_group_name:
        group_name = pool.placement_group_name  # the reservation's own group: it cannot move to a new one
    elif pool.placement_group:
        group_name = aws.ec2.PlacementGroup(f"{name}-pg", strategy="cluster", tags=resource_tags(pool.tags, f"{name}-pg"),
                                            opts=child(owner)).name
    if group_name is not None:
        extra["placement"] = aws.ec2.LaunchTemplatePlacementArgs(group_name=group_name)
        placement_ids.append(group_name)
    if pool.capacity_type in ("odcr", "capacity_block") and pool.reservation_id:
        extra["capacity_reservation_specification"] = aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
            capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                capacity_reservation_id=pool.reservation_id))
        placement_ids.append(pool.reservation_id)
    if pool.capacity_type == "capacity_block":
        extra["instance_market_options"] = aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(market_type="capacity-block")
    return extra, placement_ids, group_name


@register("aws")
class AwsBackend(CloudBackend):
    """EC2: VPC + subnets, placement groups, EFA launch templates, autoscaling groups."""

    def provider(self, site: SiteSpec) -> pulumi.ProviderResource:
        return aws.Provider(f"{site.name}-provider", region=site.region)

    def build_network(self, owner: Any, args: SiteNetworkArgs) -> NetworkBuild:
        site = args.site
        name = owner.pulumi_resource_name
        prefix = ipaddress.ip_network(site.network_cidr).prefixlen + ZONE_SUBNET_BITS
        site_tags = {TAG_SITE: site.name}
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=site.network_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags=resource_tags(site_tags, f"{name}-vpc"), opts=child(owner))
        subnets: dict[str, pulumi.Input[str]] = {}
        for index, zone in enumerate(site.zones):
            subnet = aws.ec2.Subnet(
                f"{name}-{zone}", vpc_id=vpc.id, availability_zone=zone,
                cidr_block=carve(site.network_cidr, prefix, index), map_public_ip_on_launch=False,
                tags=resource_tags(site_tags, f"{name}-{zone}"), opts=child(owner))
            subnets[zone] = subnet.id
        handles: dict[str, Any] = {"vpc": vpc}
        if any(p.role == "inference" and p.platform == "vm" for p in args.pools):
            handles["monitoring_endpoint"] = interface_endpoint(owner, f"{name}-monitoring", vpc, site,
                                                                list(subnets.values()), site_tags,
                                                                MONITORING_SERVICE, "CloudWatch",
                                                                "PutMetricData from the nodes")
        return NetworkBuild(network_id=vpc.id, subnet_ids=subnets, handles=handles)

    def _image(self, owner: Any, row: InstanceType, override: str | None) -> pulumi.Input[str]:
        if override and is_ami_id(override):
            return override
        parameter = override or dlami_parameter(row)
        return aws.ssm.get_parameter_output(name=parameter, opts=invoke_opts(owner)).value

    def _egress_group(self, owner: Any, name: str, vpc_id: pulumi.Input[str], tags: Mapping[str, str],
                      ingress_cidr: str | None) -> aws.ec2.SecurityGroup:
        """The primary interface's group: outbound anywhere; inbound only from the VPC, if at all."""
        ingress = [] if ingress_cidr is None else [aws.ec2.SecurityGroupIngressArgs(
            protocol="-1", from_port=0, to_port=0, cidr_blocks=[ingress_cidr],
            description="service traffic from inside the VPC")]
        return aws.ec2.SecurityGroup(
            name, vpc_id=vpc_id, description="gpufleet node primary interface",
            ingress=ingress,
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"],
                                                    description="outbound (images, object storage, APIs)")],
            tags=resource_tags(tags, name), opts=child(owner))

    def _launch_template(self, owner: Any, name: str, pool: PoolPlan, row: InstanceType,
                         image: pulumi.Input[str], interfaces: list[aws.ec2.LaunchTemplateNetworkInterfaceArgs],
                         metadata_tags: bool = False, **extra: Any) -> aws.ec2.LaunchTemplate:
        return launch_template(owner, name, pool, "/dev/sda1", metadata_tags=metadata_tags, image_id=image,
                               instance_type=row.instance_type, network_interfaces=interfaces, **extra)

    def build_training(self, owner: Any, args: TrainingClusterArgs) -> ClusterBuild:
        pool, row, name, zone = TrainingTarget.of(owner, args)
        vpc_id = args.network.network_id
        efa_sg = efa_security_group(owner, f"{name}-efa", vpc_id, pool.tags)
        egress_sg = self._egress_group(owner, f"{name}-egress", vpc_id, pool.tags, ingress_cidr=None)
        interfaces = efa_interfaces(row, efa_sg.id, [efa_sg.id, egress_sg.id])
        extra, placement_ids, group_name = placement_and_capacity(owner, name, pool)
        template = self._launch_template(owner, f"{name}-lt", pool, row, self._image(owner, row, args.image),
                                         interfaces, **extra)
        nodes = pool.nodes
        asg = aws.autoscaling.Group(
            f"{name}-nodes",
            min_size=nodes, max_size=nodes, desired_capacity=nodes,
            vpc_zone_identifiers=[args.network.subnet_ids[zone]],
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template.id, version="$Default"),
            placement_group=group_name,
            health_check_type="EC2",
            health_check_grace_period=int(pool.boot_minutes * 60),
            capacity_rebalance=False,
            # A Capacity Block may start after this deployment: don't wait for its instances.
            wait_for_capacity_timeout="0" if pool.capacity_type == "capacity_block" else None,
            tags=_group_tags(pool.tags, f"{name}-node"),
            opts=child(owner),
        )
        return ClusterBuild(node_group_ids=[asg.name], placement_ids=placement_ids,
                            fabric_interfaces_attached=sum(1 for i in interfaces if i.interface_type == "efa-only"))

    def build_inference(self, owner: Any, args: InferencePoolArgs) -> PoolBuild:
        pool = args.pool
        row = load_catalog().instance(pool.instance_type)
        name = owner.pulumi_resource_name
        sg = self._egress_group(owner, f"{name}-sg", args.network.network_id, pool.tags,
                                ingress_cidr=args.network.site.network_cidr)
        interfaces = [aws.ec2.LaunchTemplateNetworkInterfaceArgs(
            network_card_index=0, device_index=0, interface_type="interface", security_groups=[sg.id],
            delete_on_termination="true", associate_public_ip_address="false")]
        role, profile = self._metric_publisher(owner, name, pool)
        template = self._launch_template(
            owner, f"{name}-lt", pool, row, self._image(owner, row, args.image), interfaces, metadata_tags=True,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn))
        spec = aws.autoscaling.GroupLaunchTemplateArgs(id=template.id, version="$Default")
        notes: list[str] = []
        extra: dict[str, Any] = {}
        warm = 0
        if pool.fallback_instance_types or pool.spot_nodes:
            extra["mixed_instances_policy"] = aws.autoscaling.GroupMixedInstancesPolicyArgs(
                launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                    launch_template_specification=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                        launch_template_id=template.id, version="$Default"),
                    overrides=[aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(instance_type=t)
                               for t in (pool.instance_type, *pool.fallback_instance_types)],
                ),
                instances_distribution=_instances_distribution(pool),
            )
            why = "spot above the on-demand floor" if pool.spot_nodes else "fallback instance types"
            notes.append("no warm pool: EC2 Auto Scaling refuses warm pools on groups with a mixed instances "
                         f"policy ({why}); min_nodes stay running instead")
            extra["capacity_rebalance"] = True if pool.spot_nodes else None
        else:
            extra["launch_template"] = spec
            warm = pool.min_nodes
            min_size, max_prepared = warm_pool_limits(warm)
            extra["warm_pool"] = aws.autoscaling.GroupWarmPoolArgs(
                pool_state="Stopped", min_size=min_size, max_group_prepared_capacity=max_prepared,
                instance_reuse_policy=aws.autoscaling.GroupWarmPoolInstanceReusePolicyArgs(reuse_on_scale_in=True))
            # On the group from its creation, so the first instances are held too.
            extra["initial_lifecycle_hooks"] = [aws.autoscaling.GroupInitialLifecycleHookArgs(
                name=LAUNCH_HOOK_NAME, lifecycle_transition=LAUNCH_HOOK_TRANSITION,
                heartbeat_timeout=launch_hook_timeout_s(pool.boot_minutes), default_result=LAUNCH_HOOK_DEFAULT_RESULT)]
            notes.append(launch_hook_note(pool.boot_minutes))
        subnets = [args.network.subnet_ids[zone] for zone in pool.zones]
        warmup = int(pool.boot_minutes * 60)
        asg = aws.autoscaling.Group(
            f"{name}-nodes",
            min_size=pool.min_nodes, max_size=pool.nodes, desired_capacity=pool.min_nodes,
            vpc_zone_identifiers=subnets,
            health_check_type="EC2",
            health_check_grace_period=warmup,
            default_instance_warmup=warmup,
            tags=_group_tags(pool.tags, f"{name}-node"),
            opts=child(owner, ignore_changes=["desiredCapacity"]),
            **extra,
        )
        if warm:
            aws.iam.RolePolicy(f"{name}-lifecycle-action", role=role.id, name="complete-launch-hook",
                               policy=asg.arn.apply(lifecycle_action_policy), opts=child(owner))
        policy = aws.autoscaling.Policy(
            f"{name}-target-tracking",
            autoscaling_group_name=asg.name,
            policy_type="TargetTrackingScaling",
            estimated_instance_warmup=warmup,
            target_tracking_configuration=aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                target_value=pool.scaling_target_per_node,
                customized_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationArgs(
                    metric_name=pool.scaling_metric_name,
                    namespace=pool.scaling_metric_namespace,
                    statistic=METRIC_STATISTIC,
                    period=METRIC_PERIOD_S,
                    metric_dimensions=[aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricDimensionArgs(
                        name=METRIC_DIMENSION, value=asg.name)],
                ),
            ),
            opts=child(owner),
        )
        return PoolBuild(node_group_id=asg.name, autoscaler_id=policy.arn, warm_nodes=warm, notes=notes)

    def _metric_publisher(self, owner: Any, name: str,
                          pool: PoolPlan) -> tuple[aws.iam.Role, aws.iam.InstanceProfile]:
        """The nodes' identity: a role EC2 assumes that may publish into the pool's metric namespace
        (and, with a warm pool, complete its group's launch hook), and its instance profile."""
        prefix = iam_name_prefix(pool.name)
        role = aws.iam.Role(f"{name}-node-role", name_prefix=prefix, assume_role_policy=node_trust_policy(),
                            description=f"gpufleet {pool.name} nodes: publish the scaling metric",
                            tags=resource_tags(pool.tags, f"{name}-node-role"), opts=child(owner))
        aws.iam.RolePolicy(f"{name}-put-metric", role=role.id, name="put-scaling-metric",
                           policy=metric_publish_policy(pool.scaling_metric_namespace), opts=child(owner))
        return role, aws.iam.InstanceProfile(f"{name}-node-profile", name_prefix=prefix, role=role.name,
                                             tags=resource_tags(pool.tags, f"{name}-node-profile"), opts=child(owner))


def _instances_distribution(pool: PoolPlan) -> aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs:
    """On-demand only (fallback types), or the plan's on-demand floor as base capacity and spot above it."""
    if not pool.spot_nodes:
        return aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
            on_demand_allocation_strategy="prioritized", on_demand_base_capacity=0,
            on_demand_percentage_above_base_capacity=100)
    return aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
        on_demand_allocation_strategy="prioritized", on_demand_base_capacity=pool.on_demand_nodes,
        on_demand_percentage_above_base_capacity=0, spot_allocation_strategy=SPOT_ALLOCATION_STRATEGY)

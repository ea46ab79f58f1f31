"""AWS backend: EFA interface layout, placement and capacity, security groups, inference groups,
warm pools and the autoscaling metric's path (identity, permission, endpoint)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from gpufleet.catalog import load_catalog
from gpufleet.clouds.aws.profile import dlami_parameter, efa_layout, launch_hook_timeout_s, warm_pool_size
from gpufleet.offline import OfflineRun, RecordedResource


def _only(run: OfflineRun, type_token: str, prefix: str) -> RecordedResource:
    (found,) = [r for r in run.of_type(type_token) if r.name.startswith(prefix)]
    return found


@pytest.mark.parametrize(("instance_type", "efa"), [
    ("p5.48xlarge", 32),       # 32 network cards, one EFA each
    ("p5e.48xlarge", 32),
    ("p5en.48xlarge", 16),     # 16 cards of 200 Gbps
    ("p6-b200.48xlarge", 8),   # 8 cards
    ("p4d.24xlarge", 4),       # 4 cards
])
def test_efa_layout_enables_every_card_the_catalog_lists(instance_type: str, efa: int) -> None:
    layout = efa_layout(load_catalog().instance(instance_type))
    assert layout[0] == (0, 0, "interface")  # the primary ENA interface
    efas = [(card, device) for card, device, kind in layout if kind == "efa-only"]
    assert len(efas) == efa
    assert len({card for card, _ in efas}) == efa  # one per network card
    assert (0, 1) in efas  # card 0 carries its EFA at device 1
    assert all(device == 0 for card, device in efas if card != 0)
    assert sum(1 for _, _, kind in layout if kind == "interface") == 1


def test_efa_layout_skips_an_ena_only_card_zero() -> None:
    # p6-b300: 17 network cards, 16 EFA; card 0 is ENA-only (DescribeInstanceTypes).
    p5 = load_catalog().instance("p5.48xlarge")
    b300 = dataclasses.replace(p5, instance_type="p6-b300.48xlarge", network_cards=17, fabric_interfaces=16)
    layout = efa_layout(b300)
    efas = [(card, device) for card, device, kind in layout if kind == "efa-only"]
    assert efas == [(card, 0) for card in range(1, 17)]


def test_instances_without_efa_get_only_the_primary_interface() -> None:
    assert efa_layout(load_catalog().instance("g6e.xlarge")) == [(0, 0, "interface")]


@pytest.mark.parametrize(("instance_type", "parameter"), [
    ("p5.48xlarge", "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"),
    ("p6-b200.48xlarge", "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"),
])
def test_images_come_from_the_dlami_parameter_of_the_gpu_generation(instance_type: str, parameter: str) -> None:
    assert dlami_parameter(load_catalog().instance(instance_type)) == parameter


def test_p5_cluster_template_placement_and_security(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                                   build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "training", nodes=16)
    run = build(site_of("aws"), [pool])
    template = _only(run, "aws:ec2/launchTemplate:LaunchTemplate", pool.name).inputs
    nics = template["networkInterfaces"]
    efa = [n for n in nics if n["interfaceType"] == "efa-only"]
    assert len(efa) == 32 and len({n["networkCardIndex"] for n in efa}) == 32
    assert all(n["deleteOnTermination"] == "true" for n in nics)
    assert [n for n in nics if n["interfaceType"] == "interface"][0]["associatePublicIpAddress"] == "false"
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    assert {t["resourceType"] for t in template["tagSpecifications"]} == {"instance", "network-interface", "volume"}

    group = _only(run, "aws:ec2/placementGroup:PlacementGroup", pool.name).inputs
    assert group["strategy"] == "cluster"
    assert template["placement"]["groupName"] == f"{pool.name}-pg"

    efa_sg = _only(run, "aws:ec2/securityGroup:SecurityGroup", f"{pool.name}-efa").inputs
    assert efa_sg["ingress"] == [{**efa_sg["ingress"][0], "self": True, "protocol": "-1"}]
    assert efa_sg["egress"] == [{**efa_sg["egress"][0], "self": True, "protocol": "-1"}]
    for sg in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in sg.inputs.get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), sg.name

    asg = _only(run, "aws:autoscaling/group:Group", pool.name).inputs
    assert asg["minSize"] == asg["maxSize"] == asg["desiredCapacity"] == 16
    subnet = _only(run, "aws:ec2/subnet:Subnet", f"aws-test-{pool.zones[0]}")
    assert asg["vpcZoneIdentifiers"] == [subnet.id]
    assert asg["placementGroup"] == f"{pool.name}-pg"


def test_odcr_is_targeted_by_the_template(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                          build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "training", capacity_type="odcr", reservation_id="cr-0123456789abcdef0")
    run = build(site_of("aws"), [pool])
    template = _only(run, "aws:ec2/launchTemplate:LaunchTemplate", pool.name).inputs
    target = template["capacityReservationSpecification"]["capacityReservationTarget"]
    assert target == {"capacityReservationId": "cr-0123456789abcdef0"}
    assert "instanceMarketOptions" not in template
    # No group named: the reservation was made outside any group, which also serves a new one.
    assert template["placement"]["groupName"] == f"{pool.name}-pg"
    assert len(run.of_type("aws:ec2/placementGroup:PlacementGroup")) == 1


def test_capacity_block_uses_the_capacity_block_market_and_no_placement_group(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "training", capacity_type="capacity_block", reservation_id="cr-0fedcba9876543210",
                   placement_group=False)
    run = build(site_of("aws"), [pool])
    template = _only(run, "aws:ec2/launchTemplate:LaunchTemplate", pool.name).inputs
    assert template["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert template["capacityReservationSpecification"]["capacityReservationTarget"]["capacityReservationId"] \
        == "cr-0fedcba9876543210"
    assert "placement" not in template
    assert run.of_type("aws:ec2/placementGroup:PlacementGroup") == []
    asg = _only(run, "aws:autoscaling/group:Group", pool.name).inputs
    assert "placementGroup" not in asg and asg["minSize"] == asg["maxSize"]


def test_inference_group_spreads_over_zones_with_target_tracking_and_a_warm_pool(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "inference", nodes=12, min_nodes=3)
    run = build(site_of("aws"), [pool])
    asg = _only(run, "aws:autoscaling/group:Group", pool.name)
    assert (asg.inputs["minSize"], asg.inputs["maxSize"], asg.inputs["desiredCapacity"]) == (3, 12, 3)
    assert asg.ignore_changes == ("desiredCapacity",)
    assert len(asg.inputs["vpcZoneIdentifiers"]) == 3
    assert asg.inputs["warmPool"]["poolState"] == "Stopped"
    assert _warm_pool_sizes(asg.inputs) == {3}  # exactly min_nodes stopped nodes, whatever the desired capacity
    assert "mixedInstancesPolicy" not in asg.inputs
    policy = _only(run, "aws:autoscaling/policy:Policy", pool.name).inputs
    assert policy["policyType"] == "TargetTrackingScaling"
    tracking = policy["targetTrackingConfiguration"]
    assert tracking["targetValue"] == pool.scaling_target_per_node
    metric = tracking["customizedMetricSpecification"]
    assert (metric["metricName"], metric["namespace"]) == (pool.scaling_metric_name, pool.scaling_metric_namespace)


def test_a_warm_pool_group_holds_each_instance_in_a_launch_hook_until_it_reports_its_boot_done(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = dataclasses.replace(pool_of("aws", "inference", nodes=12, min_nodes=3), boot_minutes=25.0)
    run = build(site_of("aws"), [pool])
    asg = _only(run, "aws:autoscaling/group:Group", pool.name)
    (hook,) = asg.inputs["initialLifecycleHooks"]  # on the group from its creation: its first instances too
    assert hook["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    assert hook["heartbeatTimeout"] == 25 * 60 and hook["defaultResult"] == "ABANDON"
    # The nodes may complete (or extend) the hook on their own group, and nothing else.
    (grant,) = [r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-lifecycle-action")]
    statement = json.loads(grant.inputs["policy"])["Statement"][0]
    assert asg.outputs is not None and statement["Resource"] == asg.outputs["arn"]
    assert set(statement["Action"]) == {"autoscaling:CompleteLifecycleAction",
                                        "autoscaling:RecordLifecycleActionHeartbeat"}
    notes = run.named(pool.name).outputs["notes"]
    assert any("complete-lifecycle-action" in n and "1500 s" in n for n in notes)


def test_a_group_without_a_warm_pool_has_no_launch_hook(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "inference", fallback_instance_types=("g6e.24xlarge",))
    run = build(site_of("aws"), [pool])
    assert "initialLifecycleHooks" not in _only(run, "aws:autoscaling/group:Group", pool.name).inputs
    assert not [r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-lifecycle-action")]


@pytest.mark.parametrize(("boot_minutes", "timeout_s"), [(0.1, 30), (10, 600), (180, 7200)])
def test_the_launch_hook_timeout_stays_within_what_put_lifecycle_hook_takes(boot_minutes: float,
                                                                            timeout_s: int) -> None:
    assert launch_hook_timeout_s(boot_minutes) == timeout_s


def _warm_pool_sizes(asg: dict[str, Any]) -> set[int]:
    """The warm pool sizes EC2 Auto Scaling keeps for these recorded inputs, at every desired capacity."""
    pool = asg["warmPool"]
    return {warm_pool_size(desired, int(asg["maxSize"]), min_size=int(pool["minSize"]),
                           max_prepared=int(pool["maxGroupPreparedCapacity"]))
            for desired in range(int(asg["minSize"]), int(asg["maxSize"]) + 1)}


def test_a_large_pools_warm_pool_holds_its_minimum_not_max_minus_desired(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    # The prod stack's assistant-70b pool at aws-use1: 59 p5.48xlarge at most, 4 warm.
    pool = pool_of("aws", "inference", instance_type="p5.48xlarge", nodes=59, min_nodes=4,
                   zones=("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"))
    site = site_of("aws", zones=["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"])
    asg = _only(build(site, [pool]), "aws:autoscaling/group:Group", pool.name).inputs
    assert _warm_pool_sizes(asg) == {4}
    # What MaxGroupPreparedCapacity = max size used to give at the minimum: 55 stopped p5.48xlarge.
    assert warm_pool_size(4, 59, min_size=4, max_prepared=59) == 55


def test_inference_nodes_may_publish_their_metric_into_its_namespace_only(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = dataclasses.replace(pool_of("aws", "inference"), scaling_metric_namespace="acme/serving")
    run = build(site_of("aws"), [pool])
    role = _only(run, "aws:iam/role:Role", pool.name)
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}]
    assert role.inputs["namePrefix"] == f"{pool.name}-" and len(role.inputs["namePrefix"]) <= 38
    policy = run.named(f"{pool.name}-put-metric").inputs
    assert policy["role"] == role.id
    assert json.loads(policy["policy"])["Statement"] == [{
        "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": "acme/serving"}}}]
    profile = _only(run, "aws:iam/instanceProfile:InstanceProfile", pool.name)
    assert profile.inputs["role"] == role.name
    template = _only(run, "aws:ec2/launchTemplate:LaunchTemplate", pool.name).inputs
    assert template["iamInstanceProfile"]["arn"].endswith(f":{profile.name}/{profile.id}")
    assert template["metadataOptions"]["instanceMetadataTags"] == "enabled"  # aws:autoscaling:groupName
    tracking = _only(run, "aws:autoscaling/policy:Policy", pool.name).inputs["targetTrackingConfiguration"]
    metric = tracking["customizedMetricSpecification"]
    asg = _only(run, "aws:autoscaling/group:Group", pool.name)
    assert metric["namespace"] == "acme/serving" and metric["statistic"] == "Average" and metric["period"] == 60
    assert metric["metricDimensions"] == [{"name": "AutoScalingGroupName", "value": asg.name}]  # the group's name


def test_a_site_with_inference_reaches_cloudwatch_through_a_private_endpoint(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    site = site_of("aws")
    run = build(site, [pool_of("aws", "inference")])
    (endpoint,) = run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    e = endpoint.inputs
    assert e["serviceName"] == "com.amazonaws.us-east-1.monitoring" and e["vpcEndpointType"] == "Interface"
    assert e["privateDnsEnabled"] is True
    subnets = sorted(r.id for r in run.of_type("aws:ec2/subnet:Subnet"))
    assert sorted(e["subnetIds"]) == subnets and len(subnets) == 3  # one per zone
    (vpc,) = run.of_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True  # private DNS needs both
    (sg,) = [r for r in run.of_type("aws:ec2/securityGroup:SecurityGroup") if r.id in e["securityGroupIds"]]
    assert [(r["protocol"], r["fromPort"], r["toPort"], r["cidrBlocks"]) for r in sg.inputs["ingress"]] == [
        ("tcp", 443, 443, [site.network_cidr])]
    nodes_sg = _only(run, "aws:ec2/securityGroup:SecurityGroup", "serve-aws-test-sg").inputs
    assert nodes_sg["egress"][0]["cidrBlocks"] == ["0.0.0.0/0"]  # the nodes may reach the endpoint


def test_a_training_only_site_gets_no_endpoint_and_no_node_role(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    run = build(site_of("aws"), [pool_of("aws", "training")])
    assert run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []
    assert run.of_type("aws:iam/role:Role") == []


def test_long_pool_names_keep_the_role_name_within_iams_limit(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    long_a = pool_of("aws", "inference", workload="a" * 40)
    long_b = pool_of("aws", "inference", workload="a" * 39 + "b")
    run = build(site_of("aws"), [long_a, long_b])
    prefixes = [r.inputs["namePrefix"] for r in run.of_type("aws:iam/role:Role")]
    assert len(set(prefixes)) == 2 and all(len(p) <= 38 for p in prefixes)  # + 26 provider characters <= 64


def test_fallback_types_use_a_mixed_instances_policy_and_say_why_there_is_no_warm_pool(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "inference", fallback_instance_types=("g6e.24xlarge",))
    run = build(site_of("aws"), [pool])
    asg = _only(run, "aws:autoscaling/group:Group", pool.name).inputs
    overrides = asg["mixedInstancesPolicy"]["launchTemplate"]["overrides"]
    assert [o["instanceType"] for o in overrides] == ["g6e.12xlarge", "g6e.24xlarge"]
    assert asg["mixedInstancesPolicy"]["instancesDistribution"]["onDemandAllocationStrategy"] == "prioritized"
    assert "warmPool" not in asg and "launchTemplate" not in asg
    component = run.named(pool.name)
    assert component.is_component
    template = _only(run, "aws:ec2/launchTemplate:LaunchTemplate", pool.name).inputs
    assert "arn" in template["iamInstanceProfile"]  # the fallback types launch with the same identity


def test_odcr_in_its_placement_group_launches_into_that_group_and_creates_none(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "training", capacity_type="odcr", reservation_id="cr-0123456789abcdef0",
                   placement_group_name="p5-reserved")
    run = build(site_of("aws"), [pool])
    assert run.of_type("aws:ec2/placementGroup:PlacementGroup") == []
    template = _only(run, "aws:ec2/launchTemplate:LaunchTemplate", pool.name).inputs
    assert template["placement"] == {"groupName": "p5-reserved"}
    assert template["capacityReservationSpecification"]["capacityReservationTarget"] == {
        "capacityReservationId": "cr-0123456789abcdef0"}
    asg = _only(run, "aws:autoscaling/group:Group", pool.name).inputs
    assert asg["placementGroup"] == "p5-reserved"
    component = run.named(pool.name)
    assert component.inputs["pool"]["placement_group_name"] == "p5-reserved"  # the pack reads it there


def test_image_override_skips_the_ssm_lookup(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                             build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "training")
    run = build(site_of("aws"), [pool], images={pool.name: "ami-0abcdef1234567890"})
    template = _only(run, "aws:ec2/launchTemplate:LaunchTemplate", pool.name).inputs
    assert template["imageId"] == "ami-0abcdef1234567890"
    assert run.calls == []


def test_default_image_is_the_dlami_through_ssm(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                                build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "training")
    run = build(site_of("aws"), [pool])
    (call,) = run.calls
    assert call.token == "aws:ssm/getParameter:getParameter"
    assert call.args["name"] == dlami_parameter(load_catalog().instance("p5.48xlarge"))
    template = _only(run, "aws:ec2/launchTemplate:LaunchTemplate", pool.name).inputs
    assert template["imageId"] == call.result["value"]

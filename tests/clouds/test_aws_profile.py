"""The AWS profile's named checks and facts: identifiers, VPC ranges, ODCR placement groups, warm pool
arithmetic and the autoscaling metric's path."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gpufleet.catalog import load_catalog
from gpufleet.clouds.aws.profile import (
    check_pool_metric_path,
    check_site_network_cidr,
    check_site_region,
    check_site_zones_in_region,
    endpoint_service_name,
    iam_name_prefix,
    metric_publish_policy,
    node_trust_policy,
    region_partition,
    trust_policy,
    warm_pool_limits,
    warm_pool_size,
)
from tests.clouds.builders import make_pool, make_site

LOC = "fleet.sites[0]"


@pytest.mark.parametrize(("region", "partition"), [
    ("us-east-1", "aws"), ("eu-central-2", "aws"), ("ap-southeast-7", "aws"), ("mx-central-1", "aws"),
    ("cn-northwest-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("us-isob-east-1", "aws-iso-b"),
    ("eusc-de-east-1", "aws-eusc"),
])
def test_region_codes_of_every_partition_are_accepted(region: str, partition: str) -> None:
    assert region_partition(region) == partition
    assert check_site_region(make_site("aws", region=region, zones=[f"{region}a"]), [], LOC) == []


@pytest.mark.parametrize("region", ["us-east-1; rm -rf /", "us-east-1\n", "us-east-1\nus-west-2", "US-EAST-1",
                                    "useast1", "us-east", "eastus", "us-central1", "xx-east-1", "us-east-1a"])
def test_anything_else_in_a_region_is_refused_naming_the_field_and_the_pattern(region: str) -> None:
    (issue,) = check_site_region(make_site("aws", region=region), [], LOC)
    assert issue.loc == "fleet.sites[0].region"
    assert issue.message == (f"{region!r} is not an AWS region code "
                             "(pattern ^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-[0-9]+$)")


def test_zones_must_be_availability_zones_of_the_sites_region() -> None:
    site = make_site("aws", zones=["us-east-1a", "us-west-2b", "use1-az4", "us-east-1b\n", "us-east-1-bos-1a"])
    issues = check_site_zones_in_region(site, [], LOC)
    assert [i.loc for i in issues] == [f"{LOC}.zones[{n}]" for n in (1, 2, 3, 4)]
    assert issues[0].message == "'us-west-2b' is not an Availability Zone of region 'us-east-1'"
    assert issues[0].hint.startswith("zone names of us-east-1: pattern ^us-east-1[a-z]$")
    assert "AZ IDs are not accepted" in issues[1].hint and "AZ IDs" not in issues[0].hint
    assert issues[2].message == "'us-east-1b\\n' is not an Availability Zone of region 'us-east-1'"


def test_with_a_bad_region_only_the_zones_shape_is_judged() -> None:
    site = make_site("aws", region="us-east-1; rm -rf /", zones=["us-east-1a", "nope"])
    (issue,) = check_site_zones_in_region(site, [], LOC)
    assert issue.loc == f"{LOC}.zones[1]" and issue.message == "'nope' is not an Availability Zone name"


@pytest.mark.parametrize(("cidr", "fragment"), [
    ("10.0.0.0/8", "10.0.0.0/8 is a /8; an AWS VPC's block is /16 to /28"),
    ("10.16.0.0/12", "10.16.0.0/12 is a /12; an AWS VPC's block is /16 to /28"),
    ("169.254.0.0/16", "169.254.0.0/16 is link-local (169.254.0.0/16), which no VPC can use"),
    ("127.0.0.0/16", "127.0.0.0/16 is loopback (127.0.0.0/8), which no VPC can use"),
    ("172.17.0.0/16", "172.17.0.0/16 overlaps 172.17.0.0/16"),
])
def test_vpc_ranges_aws_refuses(cidr: str, fragment: str) -> None:
    issues = check_site_network_cidr(make_site("aws", network_cidr=cidr), [], LOC)
    assert [i.loc for i in issues] == [f"{LOC}.network_cidr"]
    assert issues[0].message.startswith(fragment)


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "10.10.0.0/20", "192.168.0.0/16", "172.31.0.0/16"])
def test_vpc_ranges_aws_accepts(cidr: str) -> None:
    assert check_site_network_cidr(make_site("aws", network_cidr=cidr), [], LOC) == []


def test_warm_pool_size_follows_put_warm_pool() -> None:
    # The API reference's own examples: desired 6, max 10 -> 4; max prepared 8 -> 2; 900 at 800 -> 100.
    assert warm_pool_size(6, 10) == 4
    assert warm_pool_size(6, 10, max_prepared=8) == 2
    assert warm_pool_size(800, 1000, max_prepared=900) == 100
    assert warm_pool_size(950, 1000, max_prepared=900) == 0  # desired above the prepared capacity
    assert warm_pool_size(950, 1000, max_prepared=900, min_size=25) == 25
    assert warm_pool_size(6, 10, max_prepared=-1) == 4  # -1 removes the prepared capacity


@pytest.mark.parametrize(("warm", "nodes"), [(4, 59), (3, 12), (5, 82), (1, 1)])
def test_warm_pool_limits_hold_exactly_the_warm_count_at_every_desired_capacity(warm: int, nodes: int) -> None:
    min_size, max_prepared = warm_pool_limits(warm)
    assert {warm_pool_size(d, nodes, min_size=min_size, max_prepared=max_prepared)
            for d in range(warm, nodes + 1)} == {warm}


def test_metric_publish_policy_is_limited_to_the_namespace() -> None:
    doc = json.loads(metric_publish_policy('my "ns"'))
    (statement,) = doc["Statement"]
    assert doc["Version"] == "2012-10-17"
    assert statement["Action"] == "cloudwatch:PutMetricData" and statement["Resource"] == "*"
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": 'my "ns"'}}


def test_a_trust_policy_lets_its_service_assume_the_role() -> None:
    # the EKS cluster role trusts eks.amazonaws.com; every node role (VM pools and EKS) trusts EC2
    doc = json.loads(trust_policy("eks.amazonaws.com"))
    assert doc == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    assert json.loads(node_trust_policy())["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_cloudwatch_endpoint_service_names() -> None:
    assert endpoint_service_name("us-east-1", "monitoring") == "com.amazonaws.us-east-1.monitoring"
    assert endpoint_service_name("us-gov-west-1", "monitoring") == "com.amazonaws.us-gov-west-1.monitoring"
    assert endpoint_service_name("cn-north-1", "monitoring") == "cn.com.amazonaws.cn-north-1.monitoring"


def test_iam_name_prefixes_fit_a_role_name_and_stay_distinct() -> None:
    assert iam_name_prefix("chat-8b-aws-use1") == "chat-8b-aws-use1-"
    long_a, long_b = "a" * 40 + "-" + "s" * 40, "a" * 40 + "-" + "s" * 39 + "t"
    prefixes = {iam_name_prefix(long_a), iam_name_prefix(long_b)}
    assert len(prefixes) == 2 and all(len(p) <= 38 and p.endswith("-") for p in prefixes)


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("scaling_metric_namespace", "AWS/EC2", "starts with 'AWS/'"),
    ("scaling_metric_namespace", ":gpufleet", "starts with ':'"),
    ("scaling_metric_namespace", "   ", "has no character other than spaces"),
    ("scaling_metric_namespace", "gpu\nfleet", "not printable ASCII"),
    ("scaling_metric_namespace", "n" * 256, "has 256 characters (1 to 255)"),
    ("scaling_metric_name", "", "has 0 characters"),
    ("scaling_metric_name", "tokens/s\u00b2", "not printable ASCII"),
])
def test_a_metric_cloudwatch_would_refuse_is_refused(field: str, value: str, fragment: str) -> None:
    row = load_catalog().instance("g6e.12xlarge")
    pool = dataclasses.replace(make_pool("aws", "inference"), **{field: value})
    (issue,) = check_pool_metric_path(pool, row, "fleet.inference[0]")
    assert issue.loc == f"fleet.inference[0].scaling.{field.removeprefix('scaling_')}"
    assert fragment in issue.message


def test_the_default_metric_and_training_pools_pass() -> None:
    row = load_catalog().instance("g6e.12xlarge")
    assert check_pool_metric_path(make_pool("aws", "inference"), row, "loc") == []
    training = dataclasses.replace(make_pool("aws"), scaling_metric_namespace="AWS/EC2")
    assert check_pool_metric_path(training, load_catalog().instance("p5.48xlarge"), "loc") == []

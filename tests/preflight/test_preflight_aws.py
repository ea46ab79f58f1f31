"""AWS checks against a real EC2 emulator (moto server), plus botocore Stubber where moto has no API.

Emulated by moto (its data is a snapshot of the real DescribeInstanceTypes /
DescribeInstanceTypeOfferings output): offerings per Availability Zone and instance-type facts.
Stubbed, because moto 5.2 does not implement them (``test_moto_still_lacks_the_stubbed_apis``
proves it): Service Quotas ``GetServiceQuota`` for EC2 codes, and EC2
``DescribeCapacityReservations``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from gpufleet.catalog import Catalog, load_catalog
from gpufleet.clouds.aws.preflight import QUOTA_CODES, AwsChecker, compare_instance_type, quota_family
from gpufleet.preflight import PreflightOptions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "preflight"
AWS_ROWS = load_catalog().for_cloud("aws")
REGIONS = ("us-east-1", "us-east-2", "us-west-2")


@pytest.fixture
def sites(make_site: Callable[..., Any]) -> list[Any]:
    return [
        make_site("aws-use1", "aws", "us-east-1", ["us-east-1a", "us-east-1c"]),
        make_site("aws-usw2", "aws", "us-west-2", ["us-west-2a", "us-west-2b"]),
    ]


def checker(moto_url: str, factory: Any = None, catalog: Catalog | None = None) -> AwsChecker:
    return AwsChecker(PreflightOptions(aws_endpoint_url=moto_url, catalog=catalog, max_attempts=2,
                                       timeout_s=10), client_factory=factory)


def test_moto_still_lacks_the_stubbed_apis(moto_url: str, aws_env: None) -> None:
    # Why two APIs are stubbed: moto 5.2 serves no EC2 quota in Service Quotas and does not implement
    # DescribeCapacityReservations. When this test fails, move those checks onto the emulator.
    sq = boto3.client("service-quotas", region_name="us-east-1", endpoint_url=moto_url)
    with pytest.raises(ClientError) as exc:
        sq.get_service_quota(ServiceCode="ec2", QuotaCode="L-417A185B")
    assert exc.value.response["Error"]["Code"] == "NoSuchResourceException"
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_url,
                       config=Config(retries={"total_max_attempts": 1}))
    # moto answers an unimplemented action with a 500 HTML page, which botocore cannot parse.
    with pytest.raises((ClientError, ResponseParserError)) as not_implemented:
        ec2.describe_capacity_reservations()
    assert "500" in str(not_implemented.value)


def test_not_offered_zone_is_a_shortfall_with_ranked_alternatives(
        moto_url: str, aws_env: None, sites: list[Any], make_pool: Callable[..., Any]) -> None:
    # moto's offerings: p6-b200.48xlarge in us-east-1c only (of us-east-1), and in us-west-2a/b/d.
    b200 = make_pool("pretrain-b200-aws-use1", "aws", "aws-use1", "us-east-1", "p6-b200.48xlarge",
                     {"us-east-1a": 4})
    findings = checker(moto_url).check_offerings(sites[0], [b200], sites)
    [f] = findings
    assert (f.kind, f.severity, f.shortfall_gpus) == ("offering", "error", 32)
    assert "p6-b200.48xlarge is not offered in us-east-1a" in f.message
    assert "EC2 offers it in us-east-1c of us-east-1" in f.message
    assert [(a.rank, a.kind, a.site, a.zones, a.in_spec) for a in f.alternatives] == [
        (1, "zone", "aws-use1", ("us-east-1c",), True),
        (2, "site", "aws-usw2", ("us-west-2a", "us-west-2b"), True),
    ]


def test_offered_zones_pass(moto_url: str, aws_env: None, sites: list[Any], make_pool: Callable[..., Any]) -> None:
    p5 = make_pool("serve-h100-aws-use1", "aws", "aws-use1", "us-east-1", "p5.48xlarge",
                   {"us-east-1a": 2, "us-east-1c": 2}, role="inference")
    [f] = checker(moto_url).check_offerings(sites[0], [p5], sites)
    assert (f.kind, f.severity) == ("offering", "ok")
    assert f.message == "p5.48xlarge is offered in us-east-1a, us-east-1c (us-east-1)"


def test_undeclared_zone_and_same_gpu_type_are_spec_changes(
        moto_url: str, aws_env: None, make_site: Callable[..., Any], make_pool: Callable[..., Any]) -> None:
    # us-east-1: p5en.48xlarge is offered in 1a and 1c; p5e.48xlarge (same H200 GPU) in none.
    # A pool of p5e.48xlarge in us-east-1a: nothing in the spec fits, p5en in 1a and zone 1c would.
    use1 = make_site("aws-use1", "aws", "us-east-1", ["us-east-1a"])
    p5e = make_pool("pretrain-h200-aws-use1", "aws", "aws-use1", "us-east-1", "p5e.48xlarge", {"us-east-1a": 2})
    [f] = checker(moto_url).check_offerings(use1, [p5e], [use1])
    assert f.severity == "error" and "EC2 offers it in no zone of us-east-1" in f.message
    assert [(a.kind, a.zones, a.instance_type, a.in_spec) for a in f.alternatives] == [
        ("instance_type", ("us-east-1a",), "p5en.48xlarge", False),
    ]
    assert "same GPU (H200): 2 x p5en.48xlarge" in f.alternatives[0].note


@pytest.mark.parametrize("row", AWS_ROWS, ids=[r.instance_type for r in AWS_ROWS])
def test_catalog_agrees_with_ec2_for_every_aws_row(moto_url: str, aws_env: None, row: Any) -> None:
    aws = checker(moto_url)
    region = next((r for r in REGIONS if aws.offered_zones(r, [row.instance_type])[row.instance_type]), REGIONS[0])
    [f] = aws.check_catalog(region, [row.instance_type])
    assert (f.kind, f.severity) == ("catalog", "ok"), f.message


def test_catalog_mismatch_is_a_finding_not_trusted(moto_url: str, aws_env: None) -> None:
    real = load_catalog()
    row = real.instance("p5en.48xlarge")
    wrong = Catalog(instances={**real.instances, row.instance_type: replace(row, fabric_interfaces=32, gpus=4)},
                    gpus=real.gpus)
    [f] = checker(moto_url, catalog=wrong).check_catalog("us-east-1", ["p5en.48xlarge"])
    assert (f.kind, f.severity) == ("catalog", "error")
    assert "GPUs per node: EC2 8, catalog 4" in f.message
    assert "EFA interfaces: EC2 16, catalog 32" in f.message


def test_compare_instance_type_reads_gpu_memory_in_mib() -> None:
    row = load_catalog().instance("p6-b200.48xlarge")
    item = {"GpuInfo": {"Gpus": [{"Name": "B200", "Count": 8, "MemoryInfo": {"SizeInMiB": 81920}}]},
            "VCpuInfo": {"DefaultVCpus": 192},
            "NetworkInfo": {"EfaSupported": True, "EfaInfo": {"MaximumEfaInterfaces": 8}}}
    assert compare_instance_type(row, item) == ["GPU memory: EC2 80.00 GiB (81920 MiB), catalog 179.06 GiB"]


def test_quota_codes() -> None:
    assert quota_family("p6-b200.48xlarge") == "p" and quota_family("g6e.12xlarge") == "g"
    assert QUOTA_CODES["p"] == ("L-417A185B", "Running On-Demand P instances")
    assert QUOTA_CODES["g"] == ("L-DB2E81BA", "Running On-Demand G and VT instances")


def test_quota_shortfall_in_gpus_with_room_elsewhere(
        aws_clients: Callable[..., Any], moto_url: str, sites: list[Any], make_pool: Callable[..., Any]) -> None:
    # Stubbed (moto has no EC2 quotas): P quota 1,536 vCPUs in us-west-2, 4,608 in us-east-1.
    h100 = make_pool("pretrain-h100-aws-usw2", "aws", "aws-usw2", "us-west-2", "p5.48xlarge", {"us-west-2a": 32})
    b200 = make_pool("pretrain-b200-aws-use1", "aws", "aws-use1", "us-east-1", "p6-b200.48xlarge", {"us-east-1c": 4})
    findings = checker(moto_url, aws_clients()).check_quotas([h100, b200], sites)
    by_region = {f.details["region"]: f for f in findings}
    ok = by_region["us-east-1"]
    assert (ok.severity, ok.details["needed_vcpus"], ok.details["limit_vcpus"]) == ("ok", 768, 4608)
    short = by_region["us-west-2"]
    assert (short.kind, short.severity, short.shortfall_gpus) == ("quota", "error", 192)
    assert short.message.startswith("Running On-Demand P instances (L-417A185B) in us-west-2 is 1,536 vCPUs; "
                                    "the plan needs 6,144 vCPUs")
    assert "short by 4,608 vCPUs, 192 GPUs" in short.message
    [alt] = short.alternatives
    # us-east-1 has 4,608 - 768 = 3,840 vCPUs left: 20 more p5.48xlarge, 160 of the 192 GPUs.
    assert (alt.kind, alt.site, alt.covers_gpus, alt.zones) == ("site", "aws-use1", 160, ("us-east-1a", "us-east-1c"))


def test_quota_falls_back_to_the_default_value(
        aws_clients: Callable[..., Any], moto_url: str, sites: list[Any], make_pool: Callable[..., Any]) -> None:
    quota = copy.deepcopy(load_stubs_entry("us-west-2"))
    stubs = {"service-quotas": {"us-west-2": [
        {"method": "get_service_quota", "expected_params": {"ServiceCode": "ec2", "QuotaCode": "L-417A185B"},
         "error": {"code": "NoSuchResourceException", "message": "The request failed because the specified service "
                   "does not exist.", "http_status": 400}},
        {"method": "get_aws_default_service_quota", "expected_params": {"ServiceCode": "ec2", "QuotaCode": "L-417A185B"},
         "response": quota},
    ]}}
    h100 = make_pool("pretrain-h100-aws-usw2", "aws", "aws-usw2", "us-west-2", "p5.48xlarge", {"us-west-2a": 8})
    [f] = checker(moto_url, aws_clients(stubs)).check_quotas([h100], sites[1:])
    assert (f.severity, f.details["limit_vcpus"]) == ("ok", 1536)


def load_stubs() -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "aws_stubs.json").read_text()))


def load_stubs_entry(region: str) -> dict[str, Any]:
    return dict(load_stubs()["service-quotas"][region][0]["response"])


def test_throttled_quota_call_is_reported_and_other_checks_run(
        aws_clients: Callable[..., Any], moto_url: str, sites: list[Any], make_pool: Callable[..., Any]) -> None:
    stubs = {"service-quotas": {"us-west-2": [
        {"method": "get_service_quota", "error": {"code": "TooManyRequestsException", "message": "Rate exceeded",
                                                  "http_status": 400}}]}}
    h100 = make_pool("pretrain-h100-aws-usw2", "aws", "aws-usw2", "us-west-2", "p5.48xlarge", {"us-west-2a": 8})
    findings = checker(moto_url, aws_clients(stubs)).check([h100], sites)
    kinds = {(f.kind, f.severity) for f in findings}
    assert ("api_error", "unknown") in kinds and ("offering", "ok") in kinds and ("catalog", "ok") in kinds
    [err] = [f for f in findings if f.kind == "api_error"]
    assert err.check == "service-quotas:GetServiceQuota"
    assert "TooManyRequestsException" in err.message and "Rate exceeded" in err.message


def test_missing_reservation_with_ranked_alternatives(
        aws_clients: Callable[..., Any], moto_url: str, sites: list[Any], make_pool: Callable[..., Any]) -> None:
    odcr = make_pool("finetune-h100-aws-use1", "aws", "aws-use1", "us-east-1", "p5.48xlarge", {"us-east-1c": 2},
                     capacity_type="odcr", reservation_id="cr-0a1b2c3d4e5f60718", placement_group=False)
    [f] = checker(moto_url, aws_clients()).check_reservations(sites[0], [odcr])
    assert (f.kind, f.severity, f.shortfall_gpus) == ("reservation", "error", 16)
    assert f.message.startswith("capacity reservation cr-0a1b2c3d4e5f60718 does not exist in us-east-1")
    # On demand carries all 16 GPUs within the 4,608-vCPU P quota (stubbed); the other reservation,
    # cr-07e1c9f1d2a3b4c5d, has 1 of 4 instances free: 8 of the 16 GPUs.
    assert [(a.rank, a.kind, a.covers_gpus, a.zones) for a in f.alternatives] == [
        (1, "on_demand", 16, ("us-east-1c",)),
        (2, "reservation", 8, ("us-east-1c",)),
    ]
    assert "needs 384 vCPUs of L-417A185B Running On-Demand P instances, 4,608 are left" in f.alternatives[0].note
    assert "set reservation_id: cr-07e1c9f1d2a3b4c5d" in f.alternatives[1].note


@pytest.mark.parametrize(
    ("change", "severity", "needle"),
    [
        ({}, "ok", "is active in us-east-1c with 4 of 4 x p5.48xlarge available"),
        ({"AvailableInstanceCount": 1}, "error", "1 of its 4 instances are available, the pool needs 2"),
        ({"AvailabilityZone": "us-east-1a"}, "error", "it is in us-east-1a, the pool is planned in us-east-1c"),
        ({"State": "expired"}, "error", "its state is 'expired', not 'active'"),
        ({"State": "scheduled"}, "warning", "it is scheduled, not yet active (starts 2026-10-01T00:00:00Z)"),
    ],
    ids=["fits", "too-small", "other-zone", "expired", "scheduled"],
)
def test_existing_reservation_is_judged(aws_clients: Callable[..., Any], moto_url: str, sites: list[Any],
                                        make_pool: Callable[..., Any], change: dict[str, Any], severity: str,
                                        needle: str) -> None:
    cr = {"CapacityReservationId": "cr-0a1b2c3d4e5f60718", "InstanceType": "p5.48xlarge",
          "InstancePlatform": "Linux/UNIX", "AvailabilityZone": "us-east-1c", "Tenancy": "default",
          "TotalInstanceCount": 4, "AvailableInstanceCount": 4, "State": "active",
          "StartDate": "2026-10-01T00:00:00Z", "EndDateType": "unlimited", "InstanceMatchCriteria": "targeted",
          "ReservationType": "default", **change}
    stubs = {"service-quotas": load_stubs()["service-quotas"], "ec2": {"us-east-1": [
        {"method": "describe_capacity_reservations", "expected_params": {"CapacityReservationIds": [cr["CapacityReservationId"]]},
         "response": {"CapacityReservations": [cr]}},
        {"method": "describe_capacity_reservations", "response": {"CapacityReservations": []}},
    ]}}
    odcr = make_pool("finetune-h100-aws-use1", "aws", "aws-use1", "us-east-1", "p5.48xlarge", {"us-east-1c": 2},
                     capacity_type="odcr", reservation_id="cr-0a1b2c3d4e5f60718", placement_group=False)
    [f] = checker(moto_url, aws_clients(stubs)).check_reservations(sites[0], [odcr])
    assert (f.kind, f.severity) == ("reservation", severity)
    assert needle in f.message


@pytest.mark.parametrize(
    ("arn", "capacity", "severity", "needle"),
    [
        ("arn:aws:ec2:us-east-1:123456789012:placement-group/reserved-p5",
         {"placement_group_name": "reserved-p5"}, "ok", "is active in us-east-1c"),
        ("arn:aws:ec2:us-east-1:123456789012:placement-group/reserved-p5", {}, "error",
         "it was created in cluster placement group reserved-p5 and serves only instances launched into it, "
         "but the pool launches into a new placement group: set capacity.placement_group_name: reserved-p5"),
        ("arn:aws:ec2:us-east-1:123456789012:placement-group/reserved-p5", {"placement_group_name": "other"},
         "error", "but the pool launches into placement group other"),
        ("arn:aws:ec2:us-east-1:123456789012:placement-group/reserved-p5", {"placement_group": False},
         "error", "but the pool launches into no placement group"),
        (None, {"placement_group_name": "reserved-p5"}, "warning",
         "it was created in no cluster placement group, so it holds no capacity inside reserved-p5"),
        (None, {}, "ok", "is active in us-east-1c"),  # made outside any group: it serves a new group too
    ],
    ids=["its-group", "new-group", "other-group", "no-group", "named-but-outside", "outside-new-group"],
)
def test_a_reservations_placement_group_is_the_pools(aws_clients: Callable[..., Any], moto_url: str,
                                                     sites: list[Any], make_pool: Callable[..., Any],
                                                     arn: str | None, capacity: dict[str, Any], severity: str,
                                                     needle: str) -> None:
    cr = {"CapacityReservationId": "cr-0a1b2c3d4e5f60718", "InstanceType": "p5.48xlarge",
          "InstancePlatform": "Linux/UNIX", "AvailabilityZone": "us-east-1c", "Tenancy": "default",
          "TotalInstanceCount": 4, "AvailableInstanceCount": 4, "State": "active",
          "EndDateType": "unlimited", "InstanceMatchCriteria": "targeted", "ReservationType": "default"}
    if arn:
        cr["PlacementGroupArn"] = arn
    stubs = {"service-quotas": load_stubs()["service-quotas"], "ec2": {"us-east-1": [
        {"method": "describe_capacity_reservations", "expected_params": {"CapacityReservationIds": [cr["CapacityReservationId"]]},
         "response": {"CapacityReservations": [cr]}},
        {"method": "describe_capacity_reservations", "response": {"CapacityReservations": []}},
    ]}}
    odcr = make_pool("finetune-h100-aws-use1", "aws", "aws-use1", "us-east-1", "p5.48xlarge", {"us-east-1c": 2},
                     capacity_type="odcr", reservation_id="cr-0a1b2c3d4e5f60718", **capacity)
    [f] = checker(moto_url, aws_clients(stubs)).check_reservations(sites[0], [odcr])
    assert (f.kind, f.severity) == ("reservation", severity)
    assert needle in f.message
    if arn:
        assert f.details["placement_group_arn"] == arn


def test_no_credentials_is_not_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, sites: list[Any],
                                       make_pool: Callable[..., Any]) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    p5 = make_pool("pretrain-h100-aws-use1", "aws", "aws-use1", "us-east-1", "p5.48xlarge", {"us-east-1c": 2})
    [f] = AwsChecker().check([p5], sites)
    assert (f.kind, f.severity, f.site) == ("not_checked", "unknown", "aws-use1")
    assert f.message.startswith("not checked: no AWS credentials found")


def test_clients_use_standard_retries_and_the_endpoint(moto_url: str, aws_env: None) -> None:
    aws = AwsChecker(PreflightOptions(aws_endpoint_url=moto_url, max_attempts=7))
    client = aws.make_client("ec2", "us-west-2")
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 7}
    assert client.meta.endpoint_url == moto_url

"""The GCP profile's named checks and facts, on hand-built sites and pools: identifiers, placement,
reservations, the fabric gpufleet sets up, and the autoscaling metric path."""

from __future__ import annotations

import pytest

from gpufleet import clouds
from gpufleet.catalog import InstanceType, load_catalog
from gpufleet.clouds.gcp.profile import (
    SERVICE_ACCOUNT_ID,
    check_pool_fabric_enabled,
    check_pool_reservation_bound,
    check_pool_scaling_metric,
    check_site_network_cidr,
    check_site_project_id,
    check_site_region,
    check_site_zones,
    metric_type,
    placement_for,
    reservation_affinity_value,
    reservation_bound,
    service_account_email,
    service_account_id,
    tcpx_setup_gap,
)
from gpufleet.errors import SpecError
from gpufleet.plan import PoolPlan, build_plan
from gpufleet.spec import parse_fleet
from tests.clouds.builders import make_pool, make_site

SITE = "fleet.sites[0]"
WORK = "fleet.training[0]"


def _row(machine: str) -> InstanceType:
    return load_catalog().instance(machine)


@pytest.mark.parametrize("region", ["us-central1", "europe-west4", "northamerica-northeast1", "me-central2",
                                    "africa-south1"])
def test_real_region_names_pass(region: str) -> None:
    site = make_site("gcp", region=region, zones=[f"{region}-a", f"{region}-b"])
    assert check_site_region(site, [], SITE) == [] and check_site_zones(site, [], SITE) == []


@pytest.mark.parametrize("region", ["us-central1 ", "us_central1", "uscentral1", "us-central", "us-central1-a",
                                    "projects/p/regions/us-central1", "us-central1\n"])
def test_region_forms_gcp_does_not_name_are_refused(region: str) -> None:
    (issue,) = check_site_region(make_site("gcp", region=region), [], SITE)
    assert issue.loc == "fleet.sites[0].region" and repr(region) in issue.message
    assert "pattern ^[a-z]+-[a-z]+[0-9]{1,2}$" in issue.message


def test_zones_must_be_a_letter_zone_of_the_sites_region() -> None:
    site = make_site("gcp", zones=["us-central1-a", "us-central1-ai1a", "us-central1", "us-east1-b"])
    issues = check_site_zones(site, [], SITE)
    assert [i.loc for i in issues] == [f"{SITE}.zones[1]", f"{SITE}.zones[2]", f"{SITE}.zones[3]"]
    assert all("(pattern ^us-central1-[a-z]$)" in i.message for i in issues)


@pytest.mark.parametrize(("project", "ok"), [
    ("gpufleet-prod", True), ("abcdef", True), ("a" * 30, True),
    ("abcde", False), ("a" * 31, False), ("1project", False), ("my-project-", False), ("My-Project", False),
    ("my_project", False), ("example.com:my-project", False), ("p; rm -rf /", False),
])
def test_project_ids_follow_googles_pattern(project: str, ok: bool) -> None:
    issues = check_site_project_id(make_site("gcp", project=project), [], SITE)
    assert (issues == []) is ok
    if not ok:
        assert issues[0].loc == f"{SITE}.project" and "pattern ^[a-z][a-z0-9-]{4,28}[a-z0-9]$" in issues[0].message


def test_an_empty_project_is_refused_as_missing() -> None:
    issues = clouds.profile("gcp").check_site(make_site("gcp", project=""), [], SITE)
    assert [(i.loc, i.message) for i in issues] == [(f"{SITE}.project", "a GCP site needs its project (the "
                                                     "provider's project, and the RoCE network profile path)")]


@pytest.mark.parametrize(("cidr", "bad"), [("127.0.0.0/16", "127.0.0.0/8"), ("169.254.0.0/16", "169.254.0.0/16"),
                                           ("10.30.0.0/16", None), ("172.16.0.0/12", None)])
def test_network_ranges_gcp_prohibits_in_subnets_are_refused(cidr: str, bad: str | None) -> None:
    issues = check_site_network_cidr(make_site("gcp", network_cidr=cidr), [], SITE)
    assert (issues == []) is (bad is None)
    if bad:
        assert issues[0].message.startswith(f"{cidr} overlaps {bad}, which GCP does not allow in a subnet")


def test_placement_is_a_workload_policy_for_the_documented_families_or_the_reservations_own() -> None:
    assert placement_for(make_pool("gcp", instance_type="a3-ultragpu-8g")) == "workload-policy"
    assert placement_for(make_pool("gcp", instance_type="a3-megagpu-8g")) == "workload-policy"
    assert placement_for(make_pool("gcp", instance_type="a3-ultragpu-8g", placement_group=False)) == "none"
    assert placement_for(make_pool("gcp", instance_type="a2-highgpu-8g", nodes=1)) == "none"
    reserved = make_pool("gcp", capacity_type="reservation", reservation_id="r")
    assert placement_for(reserved) == "reservation"


def test_reservation_bound_defaults_to_the_families_whose_reservations_are_future_reservations() -> None:
    def pool(machine: str, bound: bool | None = None, kind: str = "reservation") -> PoolPlan:
        return make_pool("gcp", instance_type=machine, capacity_type=kind, reservation_bound=bound,
                         reservation_id="r" if kind == "reservation" else None)
    assert reservation_bound(pool("a3-ultragpu-8g")) and reservation_bound(pool("a4-highgpu-8g"))
    assert not reservation_bound(pool("a3-megagpu-8g")) and reservation_bound(pool("a3-megagpu-8g", True))
    assert not reservation_bound(pool("a3-ultragpu-8g", False))
    assert not reservation_bound(pool("a3-ultragpu-8g", kind="on_demand"))
    (issue,) = check_pool_reservation_bound(pool("a2-highgpu-8g", True), _row("a2-highgpu-8g"), WORK)
    assert issue.loc == f"{WORK}.capacity.reservation_bound"
    assert check_pool_reservation_bound(pool("a3-megagpu-8g", True), _row("a3-megagpu-8g"), WORK) == []


def test_reservation_bound_needs_a_reservation() -> None:
    fleet = {"sites": [{"name": "gcp-a", "cloud": "gcp", "region": "us-central1", "zones": ["us-central1-a"],
                        "power_mw": 1, "project": "gpufleet-test"}],
             "training": [{"name": "train", "params": 1e9, "tokens": 1e10, "gpu": "H200", "deadline_days": 10, "mfu": 0.4,
                           "capacity": {"type": "on_demand", "reservation_bound": True}}]}
    with pytest.raises(SpecError) as err:
        build_plan(parse_fleet(fleet), "t")
    assert [(i.loc, i.message) for i in err.value.issues] == [
        ("fleet.training[0].capacity.reservation_bound",
         "reservation_bound is only valid with capacity type 'reservation', not 'on_demand'")]


@pytest.mark.parametrize(("machine", "gap"), [("a3-megagpu-8g", "GPUDirect-TCPXO"), ("a3-highgpu-8g", "GPUDirect-TCPX"),
                                              ("a3-ultragpu-8g", None), ("g2-standard-48", None)])
def test_only_gpudirect_tcpx_fabrics_have_a_setup_gap(machine: str, gap: str | None) -> None:
    found = tcpx_setup_gap(_row(machine))
    assert (found is None) is (gap is None)
    assert clouds.profile("gcp").fabric_setup_gap(_row(machine)) == found
    if gap:
        assert f"installs neither {gap}'s receive-data-path manager nor its NCCL plugin" in str(found)


def test_a_multi_node_tcpx_cluster_needs_the_runs_own_setup() -> None:
    row = _row("a3-highgpu-8g")
    (issue,) = check_pool_fabric_enabled(make_pool("gcp", instance_type="a3-highgpu-8g", nodes=2), row, WORK)
    assert issue.loc == f"{WORK}.fabric_setup_by_workload" and "2-node a3-highgpu-8g cluster" in issue.message
    assert check_pool_fabric_enabled(make_pool("gcp", instance_type="a3-highgpu-8g", nodes=1), row, WORK) == []
    opted = make_pool("gcp", instance_type="a3-highgpu-8g", nodes=2, fabric_setup_by_workload=True)
    assert check_pool_fabric_enabled(opted, row, WORK) == []


@pytest.mark.parametrize(("namespace", "name", "field"), [
    ("gpufleet", "tokens_per_s", None), ("gpufleet/assistant", "generated_tokens_per_s", None),
    ("gpufleet/chat-8b", "tokens_per_s", "metric_namespace"), ("gpufleet", "tokens/s", "metric_name"),
    ("gpufleet", "tokens per s", "metric_name"), ("", "tokens_per_s", "metric_namespace"),
    ("gpufleet", "1tokens", "metric_name"), ("gpufleet", "t" * 200, "metric_name"),
])
def test_the_scaling_metric_is_a_metric_type_cloud_monitoring_accepts(namespace: str, name: str,
                                                                       field: str | None) -> None:
    pool = make_pool("gcp", "inference", scaling_metric_namespace=namespace, scaling_metric_name=name)
    issues = check_pool_scaling_metric(pool, _row(pool.instance_type), "fleet.inference[0]")
    assert [i.loc for i in issues] == ([] if field is None else [f"fleet.inference[0].scaling.{field}"])
    if field is None:
        assert metric_type(pool) == f"custom.googleapis.com/{namespace}/{name}"


@pytest.mark.parametrize("pool", ["chat-8b-gcp-usc1", "a-very-long-service-name-for-chat-gcp-europe-west4", "ab"])
def test_service_account_ids_are_valid_and_stable(pool: str) -> None:
    account = service_account_id(pool)
    assert SERVICE_ACCOUNT_ID.fullmatch(account) and account == service_account_id(pool)
    assert service_account_email(account, "p-123456") == f"{account}@p-123456.iam.gserviceaccount.com"


def test_a_reservation_path_becomes_the_form_a_template_consumes() -> None:
    assert reservation_affinity_value("a3u-res") == "a3u-res"
    assert reservation_affinity_value("projects/owner/zones/us-central1-b/reservations/a3u") == \
        "projects/owner/reservations/a3u"
    assert reservation_affinity_value("projects/owner/reservations/a3u") == "projects/owner/reservations/a3u"

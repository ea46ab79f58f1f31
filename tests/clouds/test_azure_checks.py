"""Azure's named checks: what Azure would refuse, or build but not work, is refused before any resource.

Each check is exercised on hand-built sites and pools, and each refused combination once through a
stack file: `gpufleet plan` and `gpufleet preflight` exit 2 with the program's own message, and the
program registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gpufleet import clouds
from gpufleet.catalog import load_catalog
from gpufleet.clouds.azure import profile as az
from gpufleet.errors import Issue, SpecError
from gpufleet.offline import run_program
from tests.clouds.builders import make_pool, make_site

STACKS = Path(__file__).resolve().parents[1] / "fixtures" / "stacks"
ND = "Standard_ND96isr_H100_v5"
NC_A100 = "Standard_NC24ads_A100_v4"
NC_H100 = "Standard_NC40ads_H100_v5"


def _site_issues(**overrides: object) -> list[Issue]:
    return clouds.profile("azure").check_site(make_site("azure", **overrides), [], "fleet.sites[0]")


def _pool_issues(role: str = "training", instance_type: str | None = None, **overrides: object) -> list[Issue]:
    pool = make_pool("azure", role, instance_type, **overrides)
    return clouds.profile("azure").check_pool(pool, load_catalog().instance(pool.instance_type), "fleet.w[0]")


# --- identifiers ----------------------------------------------------------------------------------


def test_a_valid_site_passes_every_site_check() -> None:
    assert _site_issues(subscription_id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", resource_group="rg_GPU-(prod).1") == []


@pytest.mark.parametrize("region", ["eastus; rm -rf /", "eastus\n", "East US 2", "x"])
def test_regions_must_be_azure_region_names(region: str) -> None:
    (issue,) = _site_issues(region=region)
    assert issue.loc == "fleet.sites[0].region"
    assert issue.message == f"{region!r} is not an Azure region name (pattern ^[a-z][a-z0-9]{{1,39}}$)"
    assert "eastus2" in issue.hint


@pytest.mark.parametrize("zone", ["4", "eastus-1", "1\n", "1; rm -rf /", "0"])
def test_zones_are_1_2_or_3(zone: str) -> None:
    (issue,) = _site_issues(zones=["1", zone])
    assert issue.loc == "fleet.sites[0].zones[1]"
    assert issue.message == f"{zone!r} is not an Azure availability zone"
    assert issue.hint.startswith("1, 2, 3")


@pytest.mark.parametrize("subscription", ["not-a-guid", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n",
                                          "0f1e2d3c4b5a697887 96a5b4c3d2e1f0", "; rm -rf /"])
def test_subscription_ids_are_guids(subscription: str) -> None:
    (issue,) = _site_issues(subscription_id=subscription)
    assert issue.loc == "fleet.sites[0].subscription_id"
    assert issue.message.startswith(f"{subscription!r} is not a subscription id (a GUID, pattern ")


@pytest.mark.parametrize("group", ["rg; rm -rf /", "rg.", "r" * 91, "rg\nx", "rg with spaces", "rg/x"])
def test_resource_groups_follow_azures_naming_rules(group: str) -> None:
    (issue,) = _site_issues(resource_group=group)
    assert issue.loc == "fleet.sites[0].resource_group"
    assert issue.message == f"{group!r} is not a valid Azure resource group name"
    assert issue.hint.startswith("1–90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'")


def test_unicode_letters_are_allowed_in_resource_groups_as_azure_documents() -> None:
    assert _site_issues(resource_group="grüne-gpus") == []
    assert _site_issues(resource_group="r" * 90) == []


@pytest.mark.parametrize(("cidr", "reserved"), [("127.0.0.0/16", "127.0.0.0/8"), ("169.254.0.0/16", "169.254.0.0/16"),
                                                ("0.0.0.0/16", "0.0.0.0/8")])
def test_vnet_ranges_azure_reserves_are_refused(cidr: str, reserved: str) -> None:
    (issue,) = _site_issues(network_cidr=cidr)
    assert issue.loc == "fleet.sites[0].network_cidr"
    assert issue.message.startswith(f"VNet range {cidr} overlaps {reserved}, which Azure does not allow")


def test_the_node_subnet_must_hold_every_vm_of_the_site() -> None:
    site = make_site("azure", network_cidr="10.20.0.0/20")  # no outbound path: one node subnet /21, 2048 - 5
    profile = clouds.profile("azure")
    assert profile.check_site(site, [make_pool("azure", "training", nodes=2043)], "s") == []
    (issue,) = profile.check_site(site, [make_pool("azure", "training", nodes=2000, workload="a"),
                                         make_pool("azure", "training", nodes=44, workload="b")], "s")
    assert issue.loc == "s.network_cidr"
    assert issue.message == ("the node subnet 10.20.0.0/21 of 10.20.0.0/20 (a /21) has 2043 usable addresses, but "
                             "the site's VMs in it run 2044 at full size")
    assert issue.hint == "a VNet of /19 or larger"


def test_with_zonal_stacks_each_zones_subnet_must_hold_that_zones_vms() -> None:
    site = make_site("azure", network_cidr="10.20.0.0/20")  # serving needs egress: a /22 per zone, 1024 - 5
    profile = clouds.profile("azure")
    assert profile.check_site(site, [make_pool("azure", "inference", nodes=3 * 1019)], "s") == []
    issues = profile.check_site(site, [make_pool("azure", "inference", nodes=3 * 1020)], "s")
    assert [i.message.split(" (a")[0] for i in issues] == [
        f"the node subnet 10.20.{n}.0/22 of 10.20.0.0/20" for n in (0, 4, 8)]
    assert issues[0].message.endswith("has 1019 usable addresses, but the site's VMs in it run 1020 at full size")
    assert issues[0].hint == "a VNet of /19 or larger"


# --- capacity reservations ------------------------------------------------------------------------


def test_an_infiniband_cluster_cannot_consume_a_capacity_reservation() -> None:
    (issue,) = _pool_issues(capacity_type="reservation", reservation_id="crg")
    assert issue.loc == "fleet.w[0].capacity.type"
    assert "ND-series sizes such as Standard_ND96isr_H100_v5 cannot be reserved" in issue.message
    assert "an InfiniBand cluster is a scale set with singlePlacementGroup: true" in issue.message
    assert "proximity placement group" in issue.message
    assert issue.hint.startswith("capacity.type: on_demand")


def test_a_single_node_nc_a100_reservation_without_placement_group_is_allowed() -> None:
    assert _pool_issues(instance_type=NC_A100, nodes=1, capacity_type="reservation", reservation_id="crg",
                        placement_group=False) == []
    (issue,) = _pool_issues(instance_type=NC_A100, nodes=1, capacity_type="reservation", reservation_id="crg")
    assert issue.message.endswith("placement_group: true launches into a proximity placement group, all listed "
                                  "as unsupported for capacity reservations")


def test_ncads_h100_v5_is_not_reservable() -> None:
    assert az.reservation_unsupported_series(NC_H100) == "NCads H100 v5-series"
    assert az.reservation_unsupported_series("Standard_NC80adis_H100_v5") == "NCads H100 v5-series"
    assert az.reservation_unsupported_series(NC_A100) is None
    (issue,) = _pool_issues(instance_type=NC_H100, nodes=1, capacity_type="reservation", reservation_id="crg",
                            placement_group=False)
    assert "NCads H100 v5-series sizes such as Standard_NC40ads_H100_v5 cannot be reserved" in issue.message


# --- InfiniBand islands ---------------------------------------------------------------------------


def test_a_run_over_several_islands_must_opt_in() -> None:
    (issue,) = _pool_issues(nodes=188, islands=(94, 94), max_nodes_per_island=100)
    assert issue.loc == "fleet.w[0].allow_multiple_islands"
    assert issue.message == ("188-node Standard_ND96isr_H100_v5 cluster needs 2 InfiniBand islands (94+94 VMs; one "
                             "island holds at most 100 VMs), and traffic between islands is Ethernet, not InfiniBand")
    assert issue.hint.startswith("allow_multiple_islands: true")
    assert _pool_issues(nodes=188, islands=(94, 94), max_nodes_per_island=100, allow_multiple_islands=True) == []
    assert _pool_issues(nodes=100, islands=(100,), max_nodes_per_island=100) == []


# --- the metric path ------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [("metric_name", "tokens per s"), ("metric_name", "tok\ns"),
                                              ("metric_name", ""), ("metric_namespace", "x" * 257),
                                              ("metric_namespace", "gpufleet\x00")])
def test_a_metric_azure_monitor_refuses_is_refused(field: str, value: str) -> None:
    (issue,) = _pool_issues("inference", **{f"scaling_{field}": value})
    assert issue.loc == f"fleet.w[0].scaling.{field}"
    assert issue.message.startswith(f"{value!r} cannot be published as an Azure Monitor custom metric")
    assert issue.hint.startswith("1–256 characters, no control characters")


def test_namespaces_may_have_spaces_as_azures_own_example_does() -> None:
    assert _pool_issues("inference", scaling_metric_namespace="Memory Profile") == []


def test_an_inference_pool_beyond_one_scale_set_is_refused() -> None:
    (issue,) = _pool_issues("inference", nodes=1002)
    assert issue.message == ("pool serve-azure-test scales to 1002 VMs; one Azure scale set holds at most 1000 "
                             "(600 from a custom image)")


def test_sites_with_inference_or_driver_installing_pools_need_egress() -> None:
    training = make_pool("azure", "training")
    assert az.egress_reasons([training]) == []
    serving = make_pool("azure", "inference")
    assert az.egress_reasons([training, serving]) == [
        "serve-azure-test posts its scaling metric to https://eastus.monitoring.azure.com"]
    nc = make_pool("azure", "training", NC_A100, nodes=1, workload="tune")
    assert az.egress_reasons([nc]) == ["tune-azure-test installs the NVIDIA driver from Ubuntu's archive at first boot"]


def test_the_publisher_role_is_the_built_in_monitoring_metrics_publisher_in_the_scopes_subscription() -> None:
    scope = "/subscriptions/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/resourceGroups/rg/providers/Microsoft.Compute/x/y"
    assert az.role_definition_id(scope) == ("/subscriptions/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/providers/"
                                            "Microsoft.Authorization/roleDefinitions/3913510d-42f4-4e42-8a64-420c390055eb")
    assert az.metrics_ingestion_url("eastus2", "/subscriptions/s/x") == \
        "https://eastus2.monitoring.azure.com/subscriptions/s/x/metrics"


def test_the_default_image_follows_the_family() -> None:
    assert az.default_image(ND) == az.HPC_IMAGE and az.default_image("Standard_ND96asr_v4").cloud_init is None
    for nc in (NC_A100, NC_H100):
        image = az.default_image(nc)
        assert image.urn == "Canonical:ubuntu-24_04-lts:server:latest"
        assert image.cloud_init is not None and "ubuntu-drivers, install" in image.cloud_init


# --- through stack files: plan, preflight and the program refuse alike ------------------------------

REFUSED = {
    "azure-reservation-ib": [("fleet.training[0].capacity.type", "capacity type 'reservation' (Azure on-demand "
                                                                 "capacity reservation) cannot serve pretrain-8b-"
                                                                 "azure-eastus: ND-series sizes")],
    "azure-islands": [("fleet.training[0].allow_multiple_islands", "250-node Standard_ND96isr_H100_v5 cluster needs "
                                                                   "3 InfiniBand islands (84+83+83 VMs; one island "
                                                                   "holds at most 100 VMs)")],
    "azure-metric": [("fleet.inference[0].scaling.metric_name", "'tokens per second' cannot be published")],
    "azure-identifiers": [("fleet.sites[0].region", "'eastus; rm -rf /' is not an Azure region name (pattern "),
                          ("fleet.sites[0].zones[0]", "'1\\n2' is not an Azure availability zone"),
                          ("fleet.sites[0].subscription_id", "'$(curl evil)' is not a subscription id (a GUID"),
                          ("fleet.sites[0].resource_group", "'rg; rm -rf /' is not a valid Azure resource group"),
                          ("fleet.sites[0].network_cidr", "VNet range 127.0.0.0/16 overlaps 127.0.0.0/8")],
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_program_refuses_before_any_resource(name: str) -> None:
    run = run_program(STACKS / f"Pulumi.{name}.yaml", check=False)
    assert isinstance(run.error, SpecError), run.error
    assert run.resources == []
    assert [(i.loc, i.message[:len(m)]) for i, (_, m) in zip(run.error.issues, REFUSED[name], strict=True)] == \
        REFUSED[name]


@pytest.mark.parametrize("command", ["plan", "preflight"])
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_plan_and_preflight_exit_2_with_the_programs_message(
        name: str, command: str, run_cli: Callable[..., tuple[int, str, str]]) -> None:
    run = run_program(STACKS / f"Pulumi.{name}.yaml", check=False)
    assert isinstance(run.error, SpecError)
    code, out, err = run_cli(command, "--stack", str(STACKS / f"Pulumi.{name}.yaml"))
    assert code == 2 and out == ""
    assert [line for line in err.splitlines() if line.startswith("  - ")] == [f"  - {i}" for i in run.error.issues]
    assert "\n2 " not in err  # a newline in the input is shown escaped, never printed raw


def test_opting_in_plans_and_the_table_shows_the_islands(run_cli: Callable[..., tuple[int, str, str]],
                                                          tmp_path: Path) -> None:
    text = (STACKS / "Pulumi.azure-islands.yaml").read_text().replace("nodes: 250", "nodes: 250\n"
                                                                       "        allow_multiple_islands: true")
    stack = tmp_path / "Pulumi.islands-ok.yaml"
    stack.write_text(text)
    code, out, _ = run_cli("plan", "--stack", str(stack))
    assert code == 0 and "250 (84+83+83)" in out

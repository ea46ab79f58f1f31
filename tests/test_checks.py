"""Checks that run before any resource exists: each finds its problem, names the field and says what to do."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from gpufleet.catalog import Catalog, load_catalog
from gpufleet.checks import check_plan, validate_plan
from gpufleet.errors import Issue, SpecError
from gpufleet.names import PLACEHOLDER_MARK
from gpufleet.plan import FleetPlan, PoolPlan
from gpufleet.spec import FleetSpec, SiteSpec, parse_fleet
from tests.clouds.conftest import pool_of, site_of  # noqa: F401  (fixtures)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3Q op@host"


def _spec(sites: list[SiteSpec], pools: list[PoolPlan]) -> FleetSpec:
    """A spec whose workloads carry the pools' names (check_plan only reads names and sites)."""
    training = [{"name": p.workload, "params": 1e9, "tokens": 1e10, "gpu": p.gpu, "deadline_days": 10, "mfu": 0.4}
                for p in pools if p.role == "training"]
    inference = [{"name": p.workload, "model": {"params": 1e9, "layers": 8, "kv_heads": 8, "head_dim": 64},
                  "context_tokens": 1024, "concurrency": 1, "tokens_per_s_per_replica": 100, "gpu": p.gpu,
                  "peak_tokens_per_s": 100, "growth_per_month": 0, "lead_time_days": 0, "horizon_days": 1,
                  "survive_zone_losses": 0}
                 for p in pools if p.role == "inference"]
    return parse_fleet({"sites": [s.model_dump() for s in sites], "training": training, "inference": inference})


def _plan(pools: list[PoolPlan]) -> FleetPlan:
    return FleetPlan(stack="unit", pools=tuple(pools), workloads=(), sites=(), usd_per_hour=0.0)


def _issues(sites: list[SiteSpec], pools: list[PoolPlan], **kwargs: Any) -> list[Issue]:
    kwargs.setdefault("ssh_public_key", KEY)
    return check_plan(_spec(sites, pools), _plan(pools), **kwargs)


def test_a_valid_fleet_on_every_cloud_has_no_issue(site_of: Callable[..., Any], pool_of: Callable[..., Any]) -> None:
    clouds = ("aws", "azure", "gcp")
    sites = [site_of(c) for c in clouds]
    pools = [pool_of(c, role, workload=f"{role}-{c}") for c in clouds for role in ("training", "inference")]
    assert _issues(sites, pools) == []


@pytest.mark.parametrize("cidr", ["172.16.0.0/16", "172.16.0.0/12", "172.16.128.0/20"])
def test_azure_vnet_overlapping_the_infiniband_range_is_refused(cidr: str, site_of: Callable[..., Any],
                                                                pool_of: Callable[..., Any]) -> None:
    issues = _issues([site_of("azure", network_cidr=cidr)], [pool_of("azure")])
    assert [i.loc for i in issues] == ["fleet.sites[0].network_cidr"]
    assert "172.16.0.0/16" in issues[0].message and "InfiniBand" in issues[0].message


def test_training_cluster_over_two_zones_is_refused(site_of: Callable[..., Any], pool_of: Callable[..., Any]) -> None:
    pool = pool_of("aws", zones=("us-east-1a", "us-east-1b"), nodes_by_zone={"us-east-1a": 2, "us-east-1b": 2})
    issues = _issues([site_of("aws")], [pool])
    assert [i.loc for i in issues] == ["fleet.training[0].zone"]
    assert "us-east-1a, us-east-1b" in issues[0].message


def test_multi_node_training_without_fabric_is_refused(site_of: Callable[..., Any],
                                                       pool_of: Callable[..., Any]) -> None:
    pool = pool_of("gcp", instance_type="a2-highgpu-8g", nodes=8)
    issues = _issues([site_of("gcp")], [pool])
    assert len(issues) == 1 and issues[0].loc == "fleet.training[0].instance_types"
    assert "no GPU fabric on gcp" in issues[0].message
    assert "gpudirect-tcpx" in issues[0].hint


def test_a_fabric_the_cloud_does_not_offer_is_refused(monkeypatch: pytest.MonkeyPatch, site_of: Callable[..., Any],
                                                      pool_of: Callable[..., Any]) -> None:
    catalog = load_catalog()
    wrong = dataclasses.replace(catalog.instances["Standard_ND96isr_H100_v5"], fabric="efa")
    patched = Catalog(instances={**catalog.instances, wrong.instance_type: wrong}, gpus=catalog.gpus)
    pool = pool_of("azure")
    issues = check_plan(_spec([site_of("azure")], [pool]), _plan([pool]), ssh_public_key=KEY, catalog=patched)
    assert [i.message for i in issues] == [
        "Standard_ND96isr_H100_v5 has fabric 'efa', which azure does not offer"]
    assert issues[0].hint == "fabrics on azure: infiniband"


def test_a_catalog_row_with_more_interfaces_than_the_layout_attaches_is_refused(
        site_of: Callable[..., Any], pool_of: Callable[..., Any]) -> None:
    catalog = load_catalog()
    row = dataclasses.replace(catalog.instances["a3-highgpu-8g"], fabric_interfaces=8)
    patched = Catalog(instances={**catalog.instances, row.instance_type: row}, gpus=catalog.gpus)
    pool = pool_of("gcp", instance_type="a3-highgpu-8g")
    issues = check_plan(_spec([site_of("gcp")], [pool]), _plan([pool]), catalog=patched)
    assert any("would attach 4" in i.message for i in issues)


def test_capacity_types_must_exist_on_the_cloud(site_of: Callable[..., Any], pool_of: Callable[..., Any]) -> None:
    pool = pool_of("gcp", capacity_type="capacity_block", reservation_id="x", placement_group=False)
    issues = _issues([site_of("gcp")], [pool])
    assert [(i.loc, i.message) for i in issues] == [
        ("fleet.training[0].capacity.type", "capacity type 'capacity_block' does not exist on gcp")]


def test_gcp_sites_need_a_project_and_room_for_fabric_subnets(site_of: Callable[..., Any],
                                                              pool_of: Callable[..., Any]) -> None:
    issues = _issues([site_of("gcp", project=None, network_cidr="192.168.0.0/16")], [pool_of("gcp")])
    assert sorted(i.loc for i in issues) == ["fleet.sites[0].network_cidr", "fleet.sites[0].project"]


def test_azure_needs_a_real_ssh_key(site_of: Callable[..., Any], pool_of: Callable[..., Any]) -> None:
    sites, pools = [site_of("azure")], [pool_of("azure", "inference")]
    (missing,) = _issues(sites, pools, ssh_public_key=None)
    assert missing.loc == "config.gpufleet:sshPublicKey" and "required" in missing.message
    (bad,) = _issues(sites, pools, ssh_public_key="not a key")
    assert "OpenSSH" in bad.message
    placeholder = f"ssh-ed25519 AAAAC3Nz {PLACEHOLDER_MARK}"
    assert _issues(sites, pools, ssh_public_key=placeholder) == []
    (refused,) = _issues(sites, pools, ssh_public_key=placeholder, deploying=True)
    assert "placeholder" in refused.message


def test_no_ssh_key_is_needed_without_azure_pools(site_of: Callable[..., Any], pool_of: Callable[..., Any]) -> None:
    assert _issues([site_of("aws")], [pool_of("aws")], ssh_public_key=None) == []


def test_image_overrides_name_a_pool_and_fit_the_cloud(site_of: Callable[..., Any],
                                                       pool_of: Callable[..., Any]) -> None:
    pool = pool_of("aws")
    issues = _issues([site_of("aws")], [pool], images={"nope": "ami-1", pool.workload: "ubuntu"})
    assert sorted(i.loc for i in issues) == ["config.gpufleet:images.nope", f"config.gpufleet:images.{pool.workload}"]
    assert _issues([site_of("aws")], [pool], images={pool.name: "ami-0123"}) == []


def test_validate_plan_raises_one_error_listing_every_issue(site_of: Callable[..., Any],
                                                            pool_of: Callable[..., Any]) -> None:
    sites = [site_of("azure", network_cidr="172.16.0.0/16")]
    pools = [pool_of("azure", zones=("1", "2"), nodes_by_zone={"1": 2, "2": 2})]
    with pytest.raises(SpecError) as err:
        validate_plan(_spec(sites, pools), _plan(pools), ssh_public_key=None, source="stack unit")
    text = str(err.value)
    assert text.startswith("stack unit: 3 errors in the input")
    for needle in ("fleet.sites[0].network_cidr", "fleet.training[0].zone", "config.gpufleet:sshPublicKey"):
        assert needle in text

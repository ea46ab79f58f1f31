"""An all-spot inference pool (its plan's on-demand floor is 0) through the pack, as a preview sends it:
the planner puts a service that allows it (``spot: {max_fraction: 1.0, reclaim_fraction: 0.0}``) all on
spot on Azure and on GCP, the components build only its spot groups, and the pack reads them as they
are: no on-demand group is expected, each spot group pairs with its own autoscaler, every policy
passes, and ``on-demand-floor-covers-peak`` still blocks a spot group cut below the peak."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from gpufleet.engine import PolicyEngine, StackResource, analyzed_resources, parse_policy_config
from gpufleet.names import UNKNOWN_VALUES
from gpufleet.offline import run_program
from gpufleet.plan import build_plan
from gpufleet.policy.config import BY_NAME
from gpufleet.policy.pack import run_rule
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.policy.rules import RULES
from gpufleet.policy.spot import NAME
from gpufleet.spec import parse_fleet
from tests.policies.conftest import PACK_DIR

SETTING = "azure-native:monitor:AutoscaleSetting"
AUTOSCALER = "gcp:compute/regionAutoscaler:RegionAutoscaler"
ALL_SPOT = {"max_fraction": 1.0, "reclaim_fraction": 0.0}  # every node may be spot; none is reclaimed at once


def _service(name: str, gpu: str, params: float, layers: int, site: str) -> dict[str, Any]:
    return {"name": name, "model": {"params": params, "layers": layers, "kv_heads": 8, "head_dim": 128,
                                    "dtype": "fp8" if params > 1e10 else "bf16"},
            "context_tokens": 8192, "concurrency": 16, "tokens_per_s_per_replica": 4800 if params > 1e10 else 2000,
            "gpu": gpu, "peak_tokens_per_s": 20000, "growth_per_month": 0.05, "lead_time_days": 30,
            "horizon_days": 90, "survive_zone_losses": 1, "spot": ALL_SPOT, "sites": [site]}


FLEET: dict[str, Any] = {
    "sites": [
        {"name": "azure-westus3", "cloud": "azure", "region": "westus3", "zones": ["1", "2", "3"], "power_mw": 3.0,
         "pue": 1.18, "quota_gpus": {"H100": 256}, "price_per_gpu_hour": {"Standard_ND96isr_H100_v5": 4.10},
         "spot_price_per_gpu_hour": {"Standard_ND96isr_H100_v5": 2.25}, "network_cidr": "10.80.0.0/16",
         "resource_group": "gpufleet-allspot"},
        {"name": "gcp-usc1", "cloud": "gcp", "region": "us-central1",
         "zones": ["us-central1-a", "us-central1-b", "us-central1-c"], "power_mw": 3.0, "pue": 1.1,
         "quota_gpus": {"L4": 256}, "price_per_gpu_hour": {"g2-standard-96": 0.90},
         "spot_price_per_gpu_hour": {"g2-standard-96": 0.30}, "network_cidr": "10.30.0.0/16",
         "project": "gpufleet-serving"},
    ],
    "inference": [_service("batch-70b", "H100", 7.0e10, 80, "azure-westus3"),
                  _service("batch-8b", "L4", 8.0e9, 32, "gcp-usc1")],
}
AZURE_POOL, GCP_POOL = "batch-70b-azure-westus3", "batch-8b-gcp-usc1"


@pytest.fixture(scope="module")
def preview(tmp_path_factory: pytest.TempPathFactory) -> list[StackResource]:
    path = tmp_path_factory.mktemp("allspot") / "Pulumi.allspot.yaml"
    path.write_text(yaml.safe_dump({"config": {"gpufleet:fleet": FLEET}}, sort_keys=False))
    return analyzed_resources(run_program(path))


def _plain(resources: list[StackResource]) -> list[Resource]:
    return [Resource(type=r.type, name=r.name, urn=r.urn, props=r.properties, parent=r.parent,
                     dependencies=tuple(r.dependencies)) for r in resources]


def _edit(resources: list[StackResource], name: str, change: Callable[[dict[str, Any]], None]) -> list[StackResource]:
    out = copy.deepcopy(resources)
    (target,) = [r for r in out if r.name == name]
    change(target.properties)
    return out


def _floor_findings(resources: list[StackResource]) -> tuple[list[str], list[str]]:
    result = run_rule(BY_NAME[NAME], RULES[NAME], _plain(resources), {})
    return [f.message for f in result.findings], result.unknown


def test_the_plan_puts_both_pools_all_on_spot() -> None:
    pools = {p.name: p for p in build_plan(parse_fleet(copy.deepcopy(FLEET)), check=False).pools}
    assert set(pools) == {AZURE_POOL, GCP_POOL}
    for pool in pools.values():
        assert pool.spot_nodes == pool.nodes > 0 and pool.on_demand_nodes == 0


def test_only_spot_groups_are_built_each_paired_with_its_own_autoscaler(preview: list[StackResource]) -> None:
    inventory = build_inventory(_plain(preview))
    groups = {g.name: g for name in (AZURE_POOL, GCP_POOL) for g in inventory.pools[name].groups}
    assert set(groups) == {f"{AZURE_POOL}-z{z}-spot-vmss" for z in ("1", "2", "3")} | {f"{GCP_POOL}-spot-mig"}
    for name, group in groups.items():
        assert group.spot_group, name
        assert group.autoscaler is not None
        # the target is unknown during the preview: the autoscaler pairs through its dependency on the group
        target = group.autoscaler.props.get("targetResourceUri", group.autoscaler.props.get("target"))
        assert target in UNKNOWN_VALUES and group.resource.urn in group.autoscaler.dependencies
        stem = name.removesuffix("-vmss").removesuffix("-mig")
        assert group.autoscaler.name in (f"{stem}-autoscale", f"{stem}-autoscaler")
    assert all(not inventory.pools[name].unknown for name in (AZURE_POOL, GCP_POOL))


def test_the_stack_as_built_passes_every_policy_through_the_analyzer_protocol(preview: list[StackResource]) -> None:
    assert _floor_findings(preview) == ([], [])
    with PolicyEngine(PACK_DIR, stack="allspot") as engine:
        diagnostics = engine.run(preview, parse_policy_config({})).diagnostics
    assert diagnostics == []


def _spot_cut(resources: list[StackResource]) -> list[StackResource]:
    """Azure's zone-1 spot set held at 0 (1 + 1 left) and GCP's spot MIG at 4 of its 6 (2 + 1 + 1)."""
    def azure_none(props: dict[str, Any]) -> None:
        props["profiles"][0]["capacity"].update(minimum="0", maximum="0", default="0")

    def gcp_four(props: dict[str, Any]) -> None:
        props["autoscalingPolicy"]["maxReplicas"] = 4

    cut = _edit(resources, f"{AZURE_POOL}-z1-spot-autoscale", azure_none)
    return _edit(cut, f"{GCP_POOL}-spot-autoscaler", gcp_four)


def test_a_spot_group_cut_below_the_peak_still_blocks(preview: list[StackResource]) -> None:
    findings, unknown = _floor_findings(_spot_cut(preview))
    assert unknown == []
    by_workload = {m.split(":", 1)[0]: m for m in findings}
    assert set(by_workload) == {"batch-70b", "batch-8b"}
    # no reclaim declared, so what is left after the worst zone loss is the spot capacity itself
    assert "after 0% of its 2 spot nodes are reclaimed during its worst declared loss (1 zone), 1.0 nodes " \
           "remain (0 on-demand in all)" in by_workload["batch-70b"]
    assert "after 0% of its 4 spot nodes are reclaimed during its worst declared loss (1 zone), 2.0 nodes " \
           "remain (0 on-demand in all)" in by_workload["batch-8b"]
    with PolicyEngine(PACK_DIR, stack="allspot") as engine:
        blocked = engine.run(_spot_cut(preview), parse_policy_config({})).diagnostics
    floor = [d for d in blocked if d.policy == NAME]
    assert {d.message.split(":", 1)[0] for d in floor} == {"batch-70b", "batch-8b"}
    assert all(d.enforcement == "mandatory" for d in floor)


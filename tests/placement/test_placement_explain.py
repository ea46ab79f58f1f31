"""Infeasible problems: the explanation names the binding site and the MW or GPUs it lacks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gpufleet.errors import InfeasiblePlanError
from gpufleet.placement import PlacementProblem, solve


def _solve(data: dict[str, Any], facts: Any) -> Any:
    return solve(PlacementProblem.model_validate(data), facts)


def _apply(data: dict[str, Any], binding: list[Any]) -> dict[str, Any]:
    """The problem with every reported shortfall added to its limit."""
    out = copy.deepcopy(data)
    sites = {s["name"]: s for s in out["sites"]}
    for b in binding:
        if b.kind == "power":
            sites[b.where]["power_mw"] += b.shortfall
        else:
            name, _, gpu = b.where.rpartition("/")
            sites[name]["quota_gpus"][gpu] += int(b.shortfall)
    return out


def test_power_shortfall_is_reported_in_mw_at_the_site(facts, check, make_site, make_pool):
    # 1000 nodes × 10 kW × PUE 1.2 = 12 MW at the meter; the envelope is 8.6 MW: 3.4 MW short.
    data = {
        "sites": [make_site("us-east", power_mw=8.6, pue=1.2, price_per_gpu_hour={"h8": 2.0})],
        "pools": [make_pool("pretrain", "training", 1000, ["h8"])],
    }
    result = _solve(data, facts)
    assert result.status == "infeasible"
    assert result.assignments == [] and result.cost_per_hour is None
    [b] = result.binding
    assert (b.kind, b.where, b.unit) == ("power", "us-east", "MW")
    assert b.shortfall == pytest.approx(3.4)
    assert "needs 3.4 MW more power at us-east" in result.explanation
    assert "larger than any single site allows" in result.explanation
    fixed = _apply(data, result.binding)
    problem = PlacementProblem.model_validate(fixed)
    check(problem, facts, solve(problem, facts))


def test_quota_shortfall_names_gpu_and_site_with_power_as_the_alternative(facts, check, make_site, make_pool):
    # 400 nodes × 8 = 3200 H100 at 12.5 kW each (PUE 1.25) = 5 MW.
    # eastus (Azure): quota 2688 H100 → 512 short (a 19 % raise of its quota).
    # us-east (AWS): envelope 1.6 MW → 3.4 MW short (a 213 % raise): the alternative.
    data = {
        "sites": [
            make_site("us-east", power_mw=1.6, pue=1.25, price_per_gpu_hour={"h8": 2.0}),
            make_site("eastus", cloud="azure", region="r2", power_mw=10.0, pue=1.25,
                      quota_gpus={"H100": 2688}, price_per_gpu_hour={"zh8": 2.5}),
        ],
        "pools": [make_pool("pretrain", "training", 400, ["h8", "zh8"])],
    }
    result = _solve(data, facts)
    assert result.status == "infeasible"
    [b] = result.binding
    assert (b.kind, b.where, b.shortfall, b.unit) == ("quota", "eastus/H100", 512, "GPUs")
    [[alt]] = result.alternatives
    assert (alt.kind, alt.where) == ("power", "us-east")
    assert alt.shortfall == pytest.approx(3.4)
    assert "needs 512 more H100 quota at eastus" in result.explanation
    assert "Alternatively: needs 3.4 MW more power at us-east" in result.explanation
    for relaxation in (result.binding, result.alternatives[0]):
        problem = PlacementProblem.model_validate(_apply(data, relaxation))
        check(problem, facts, solve(problem, facts))


def test_inference_relaxation_counts_every_pool_at_the_site(facts, check, make_site, make_pool):
    # Two sites of 40 H100 each (5 nodes). A 6-node pool surviving one loss needs 6 at each site:
    # 8 more H100 at each site, both needed together.
    data = {
        "sites": [
            make_site("A", quota_gpus={"H100": 40}, price_per_gpu_hour={"h8": 1.0}),
            make_site("B", quota_gpus={"H100": 40}, price_per_gpu_hour={"h8": 1.0}),
        ],
        "pools": [make_pool("chat", "inference", 6, ["h8"])],
    }
    result = _solve(data, facts)
    assert [(b.kind, b.where, b.shortfall) for b in result.binding] == [
        ("quota", "A/H100", 8),
        ("quota", "B/H100", 8),
    ]
    assert "needs 8 more H100 quota at A and 8 more H100 quota at B" in result.explanation
    problem = PlacementProblem.model_validate(_apply(data, result.binding))
    check(problem, facts, solve(problem, facts))


def test_a_quota_of_zero_is_relaxed_like_any_other(facts, make_site, make_pool):
    data = {
        "sites": [make_site("dc", quota_gpus={"H100": 0}, price_per_gpu_hour={"h8": 1.0})],
        "pools": [make_pool("t", "training", 8, ["h8"])],
    }
    result = _solve(data, facts)
    assert [(b.kind, b.where, b.shortfall) for b in result.binding] == [("quota", "dc/H100", 64)]


def test_unpriced_types_explain_why_nothing_fits(facts, make_site, make_pool):
    data = {
        "sites": [make_site("A", price_per_gpu_hour={"a8": 1.0}), make_site("B", price_per_gpu_hour={"l1": 1.0})],
        "pools": [make_pool("t", "training", 2, ["h8"])],
    }
    result = _solve(data, facts)
    assert result.status == "infeasible"
    assert "h8 has no price at A, B, so it is not offered there" in result.explanation
    [b] = result.binding
    assert (b.kind, b.where) == ("instance_type", "t")


def test_no_site_of_the_types_cloud_in_the_regions(facts, make_site, make_pool):
    data = {
        "sites": [make_site("A", region="us-east-1"), make_site("Z", cloud="azure", region="eastus")],
        "pools": [make_pool("t", "training", 2, ["h8"], regions=["eastus"])],
    }
    result = _solve(data, facts)
    assert "h8 runs on aws and no aws site is in regions eastus" in result.explanation
    assert result.binding[0].kind == "regions"


def test_pinned_zone_without_a_suitable_site(facts, make_site, make_pool):
    data = {
        "sites": [make_site("A"), make_site("Z", cloud="azure", zones=["z1"])],
        "pools": [make_pool("t", "training", 2, ["h8"], zone="z1")],
    }
    result = _solve(data, facts)
    assert "no aws site in the problem has zone z1" in result.explanation
    assert result.binding[0].kind == "zones"


def test_surviving_as_many_losses_as_failure_domains_is_structural(facts, make_site, make_pool):
    # Three sites but only two failure domains; surviving two losses would leave nothing.
    data = {
        "sites": [
            make_site("A", failure_domain="dc1", price_per_gpu_hour={"l1": 1.0}),
            make_site("B", failure_domain="dc1", price_per_gpu_hour={"l1": 1.0}),
            make_site("C", price_per_gpu_hour={"l1": 1.0}),
            make_site("D", price_per_gpu_hour={"a8": 1.0}),  # l1 unpriced: not a candidate
        ],
        "pools": [make_pool("chat", "inference", 4, ["l1"], survive_site_losses=2)],
    }
    result = _solve(data, facts)
    assert result.status == "infeasible"
    assert "must survive losing 2 failure domains but its candidate sites span only 2 (dc1, C)" in result.explanation
    assert "l1 has no price at D" in result.explanation
    [b] = result.binding
    assert (b.kind, b.where, b.shortfall) == ("regions", "chat", 1)
    assert result.alternatives == []


def test_raise_if_infeasible_carries_the_binding_constraints(facts, make_site, make_pool):
    data = {
        "sites": [make_site("dc", power_mw=0.05, price_per_gpu_hour={"h8": 1.0})],
        "pools": [make_pool("t", "training", 10, ["h8"])],
    }
    result = _solve(data, facts)
    with pytest.raises(InfeasiblePlanError) as err:
        result.raise_if_infeasible()
    assert err.value.binding == result.binding
    assert err.value.exit_code == 3
    assert str(err.value.binding[0]) == "needs 0.1 MW more power at dc (envelope 0.05 MW; the relaxed placement draws 0.100 MW for pools t)"

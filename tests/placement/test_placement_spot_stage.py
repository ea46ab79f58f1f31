"""Spot as a second stage over the on-demand optimum: never dearer than no spot, spot beyond the
on-demand placement's own options, and the joint program when on-demand alone cannot place."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gpufleet.placement import PlacementProblem, solve
from gpufleet.placement.milp import build_candidates
from gpufleet.placement.spot_stage import SPOT_NEIGHBOURS, neighbourhood, solve_in_stages, without_spot


def _split(result: Any) -> tuple[int, int]:
    return (sum(a.nodes for a in result.assignments if not a.spot),
            sum(a.nodes for a in result.assignments if a.spot))


def test_spot_goes_where_the_on_demand_placement_is_not(facts, check, make_site, make_pool):
    # On-demand is cheapest at s1 (3 USD/GPU-h, no spot); s2 lists on-demand at 4 but spot at 1. The
    # on-demand optimum is all at s1; the second stage moves the spot share to s2: 6 on-demand at s1
    # (the floor) and 4 spot at s2, 6·8·3 + 4·8·1 = 176 USD/h instead of 240.
    data = {"sites": [make_site("s1", price_per_gpu_hour={"h8": 3.0}),
                      make_site("s2", price_per_gpu_hour={"h8": 4.0}, spot_price_per_gpu_hour={"h8": 1.0})],
            "pools": [make_pool("svc", "inference", 10, ["h8"], survive_site_losses=0,
                                spot={"max_fraction": 0.5}, peak_nodes=6)]}
    problem = PlacementProblem.model_validate(data)
    result = solve(problem, facts)
    check(problem, facts, result)
    placed: dict[tuple[str, bool], int] = {}
    for a in result.assignments:
        placed[(a.site, a.spot)] = placed.get((a.site, a.spot), 0) + a.nodes
    assert placed == {("s1", False): 6, ("s2", True): 4}
    assert result.cost_per_hour == pytest.approx(176.0)
    assert result.status == "optimal"


def test_spot_never_costs_more_than_no_spot(facts, check, make_site, make_pool):
    # Seeded fleets of three sites, pools surviving a site loss, spot at a random discount (or a
    # premium) at random sites: the plan with spot costs at most the plan without.
    rng = random.Random(7)
    for _ in range(12):
        sites = [make_site(f"s{i}", price_per_gpu_hour={"h8": rng.choice([3.0, 3.5, 4.0])},
                           quota_gpus={"H100": rng.choice([64, 128, 256])},
                           **({"spot_price_per_gpu_hour": {"h8": rng.choice([1.0, 2.0, 5.0])}} if rng.random() < 0.6 else {}))
                 for i in range(3)]
        pools = [make_pool(f"p{j}", "inference", rng.randint(2, 12), ["h8"],
                           spot={"max_fraction": rng.choice([0.2, 0.5, 1.0]), "reclaim_fraction": rng.choice([0.5, 1.0])},
                           peak_nodes=rng.randint(1, 8)) for j in range(3)]
        with_spot = PlacementProblem.model_validate({"sites": sites, "pools": pools})
        plain = PlacementProblem.model_validate({"sites": sites, "pools": [
            {k: v for k, v in p.items() if k not in ("spot", "peak_nodes")} for p in pools]})
        spot_result, plain_result = solve(with_spot, facts), solve(plain, facts)
        if plain_result.status == "infeasible":
            continue
        check(with_spot, facts, spot_result)
        assert spot_result.cost_per_hour is not None and plain_result.cost_per_hour is not None
        assert spot_result.cost_per_hour <= plain_result.cost_per_hour + 1e-6


def test_spot_supplies_what_the_on_demand_quota_cannot(facts, check, make_site, make_pool):
    # 10 nodes, on-demand quota 64 H100 (8 nodes): no on-demand placement exists, so the joint program
    # decides; the floor of 6 stays on-demand and spot holds the rest.
    data = {"sites": [make_site("s1", price_per_gpu_hour={"h8": 4.0}, quota_gpus={"H100": 64},
                                spot_price_per_gpu_hour={"h8": 1.0})],
            "pools": [make_pool("svc", "inference", 10, ["h8"], survive_site_losses=0,
                                spot={"max_fraction": 0.5}, peak_nodes=6)]}
    problem = PlacementProblem.model_validate(data)
    cands = build_candidates(problem, facts)
    assert solve_in_stages(cands, time_limit_s=10, mip_rel_gap=0.001) is None
    result = solve(problem, facts)
    check(problem, facts, result)
    assert _split(result) == (6, 4)


def test_the_neighbourhood_keeps_used_options_and_the_cheapest_spot(facts, make_site, make_pool):
    # Six spot sites at rising prices: the pool gets spot at its on-demand site and at the
    # SPOT_NEIGHBOURS cheapest others; on-demand only where the on-demand optimum put it.
    sites = [make_site("od", price_per_gpu_hour={"h8": 1.0}, spot_price_per_gpu_hour={"h8": 0.9})]
    sites += [make_site(f"s{i}", price_per_gpu_hour={"h8": 4.0}, spot_price_per_gpu_hour={"h8": 2.0 - i / 10})
              for i in range(6)]
    problem = PlacementProblem.model_validate({"sites": sites, "pools": [
        make_pool("svc", "inference", 4, ["h8"], survive_site_losses=0, spot={"max_fraction": 0.5}, peak_nodes=2)]})
    cands = build_candidates(problem, facts)
    on_demand = [(o, 4) for o in without_spot(cands).options[0] if o.site == 0]
    near = neighbourhood(cands, on_demand)
    assert [o.site for o in near.options[0]] == [0]
    expected = [0] + [6 - i for i in range(SPOT_NEIGHBOURS)]
    assert [o.site for o in near.spot_options[0]] == sorted(expected)

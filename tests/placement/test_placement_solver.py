"""Hand-checked placements: each case states the optimum and why, and the checker re-verifies it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gpufleet.placement import PlacementProblem, solve


def _solve(data: dict[str, Any], facts: Any, **kw: Any) -> Any:
    problem = PlacementProblem.model_validate(data)
    return problem, solve(problem, facts, **kw)


def _placed(result: Any) -> dict[tuple[str, str, str], int]:
    """Nodes per (pool, site, instance type), zones summed."""
    out: dict[tuple[str, str, str], int] = {}
    for a in result.assignments:
        key = (a.pool, a.site, a.instance_type)
        out[key] = out.get(key, 0) + a.nodes
    return out


def test_training_pool_goes_to_the_cheapest_site_with_room(facts, check, make_site, make_pool):
    # Site "cheap" has H100 quota for 3 nodes only; a 4-node pool must go to "mid" (3 USD/GPU-h),
    # not "dear" (5 USD): 4 nodes × 8 GPUs × 3 = 96 USD/h.
    data = {
        "sites": [
            make_site("cheap", quota_gpus={"H100": 24}, price_per_gpu_hour={"h8": 2.0}),
            make_site("dear", price_per_gpu_hour={"h8": 5.0}),
            make_site("mid", price_per_gpu_hour={"h8": 3.0}),
        ],
        "pools": [make_pool("train", "training", 4, ["h8"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert result.status == "optimal"
    assert [a.to_json() for a in result.assignments] == [
        {"pool": "train", "site": "mid", "zone": "mid-a", "instance_type": "h8", "nodes": 4}
    ]
    assert result.cost_per_hour == pytest.approx(96.0)
    assert result.site_power_mw == {"cheap": 0.0, "dear": 0.0, "mid": 0.04}
    assert result.mip_gap == pytest.approx(0.0, abs=1e-9)


def test_ties_go_to_the_preferred_type_then_the_earlier_site(facts, check, make_site, make_pool):
    # h8 and a8 both cost 16 USD per node-hour at both sites: preference (h8 first) decides the type,
    # site order decides the site.
    prices = {"h8": 2.0, "a8": 2.0}
    data = {
        "sites": [make_site("s1", price_per_gpu_hour=prices), make_site("s2", price_per_gpu_hour=prices)],
        "pools": [make_pool("t", "training", 2, ["h8", "a8"]), make_pool("u", "training", 2, ["a8", "h8"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("t", "s1", "h8"): 2, ("u", "s1", "a8"): 2}


def test_beats_greedy_that_fills_the_cheapest_site_first(facts, check, make_site, make_pool):
    # Quotas: A holds 10 nodes (1 USD/GPU-h), B 10 nodes (2 USD), C 100 nodes (4 USD).
    # Greedy, pools in order, cheapest site with room: small → A (A keeps 6 nodes), big → B:
    #   4·8·1 + 8·8·2 = 160 USD/h.
    # Optimum: big → A, small → B: 8·8·1 + 4·8·2 = 128 USD/h.
    data = {
        "sites": [
            make_site("A", quota_gpus={"H100": 80}, price_per_gpu_hour={"h8": 1.0}),
            make_site("B", quota_gpus={"H100": 80}, price_per_gpu_hour={"h8": 2.0}),
            make_site("C", quota_gpus={"H100": 800}, price_per_gpu_hour={"h8": 4.0}),
        ],
        "pools": [make_pool("small", "training", 4, ["h8"]), make_pool("big", "training", 8, ["h8"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("small", "B", "h8"): 4, ("big", "A", "h8"): 8}
    assert result.cost_per_hour == pytest.approx(128.0)
    assert _greedy_training_cost(problem, facts) == pytest.approx(160.0)


def test_feasible_where_greedy_finds_nothing(facts, check, make_site, make_pool):
    # A holds 10 nodes, B holds 6. Greedy puts the 4-node pool on A (cheapest) and then has no room
    # for the 8-node pool. The solver puts 8 on A and 4 on B: 8·8·2 + 4·8·3 = 224 USD/h.
    data = {
        "sites": [
            make_site("A", quota_gpus={"H100": 80}, price_per_gpu_hour={"h8": 2.0}),
            make_site("B", quota_gpus={"H100": 48}, price_per_gpu_hour={"h8": 3.0}),
        ],
        "pools": [make_pool("p4", "training", 4, ["h8"]), make_pool("p8", "training", 8, ["h8"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("p4", "B", "h8"): 4, ("p8", "A", "h8"): 8}
    assert result.cost_per_hour == pytest.approx(224.0)
    assert _greedy_training_cost(problem, facts) is None


def _greedy_training_cost(problem: PlacementProblem, facts: Any) -> float | None:
    """Training pools in order, each on the cheapest (site, type) that still has quota and power."""
    quota = {(s.name, g): q for s in problem.sites for g, q in s.quota_gpus.items()}
    power_kw = {s.name: 1000 * s.power_mw for s in problem.sites}
    cost = 0.0
    for p in problem.pools:
        options = []
        for s in problem.sites:
            for t in p.instance_types:
                f = facts[t]
                if f.cloud == s.cloud and t in (s.price_per_gpu_hour or {}):
                    options.append((s.price_per_gpu_hour[t] * f.gpus, s, f))
        for price, s, f in sorted(options, key=lambda o: o[0]):
            need_gpus, need_kw = p.nodes * f.gpus, p.nodes * f.node_power_kw * s.pue
            if quota.get((s.name, f.gpu), 10**9) >= need_gpus and power_kw[s.name] >= need_kw:
                if (s.name, f.gpu) in quota:
                    quota[(s.name, f.gpu)] -= need_gpus
                power_kw[s.name] -= need_kw
                cost += p.nodes * price
                break
        else:
            return None
    return cost


def test_inference_spreads_to_minimise_survival_overhead(facts, check, make_site, make_pool):
    # 6 one-GPU nodes surviving one site loss, at 1, 1, 1.2 and 10 USD/GPU-h.
    # Two sites need 6 + 6 = 12 USD/h; three sites need 3 + 3 + 3 (T − max ≥ 6 ⇒ T ≥ 9):
    # 3·1 + 3·1 + 3·1.2 = 9.6 USD/h; four sites need 2 each: 2 + 2 + 2.4 + 20 = 26.4 USD/h.
    # A greedy "cheapest k + 1 sites, N each" answer costs 12.
    data = {
        "sites": [
            make_site("A", price_per_gpu_hour={"l1": 1.0}),
            make_site("B", price_per_gpu_hour={"l1": 1.0}),
            make_site("C", price_per_gpu_hour={"l1": 1.2}),
            make_site("D", price_per_gpu_hour={"l1": 10.0}),
        ],
        "pools": [make_pool("chat", "inference", 6, ["l1"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("chat", "A", "l1"): 3, ("chat", "B", "l1"): 3, ("chat", "C", "l1"): 3}
    assert result.cost_per_hour == pytest.approx(9.6)


def test_surviving_two_losses_uses_the_exact_top_k_rows(facts, check, make_site, make_pool):
    # 6 nodes surviving 2 of 4 equal sites: T − (two largest) ≥ 6 with T minimal ⇒ 3 per site (T = 12).
    prices = {"l1": 1.0}
    data = {
        "sites": [make_site(n, price_per_gpu_hour=prices) for n in "ABCD"],
        "pools": [make_pool("chat", "inference", 6, ["l1"], survive_site_losses=2)],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("chat", n, "l1"): 3 for n in "ABCD"}
    assert result.cost_per_hour == pytest.approx(12.0)


def test_survive_zero_losses_needs_no_redundancy(facts, check, make_site, make_pool):
    data = {
        "sites": [make_site("A", price_per_gpu_hour={"l1": 1.0}), make_site("B", price_per_gpu_hour={"l1": 2.0})],
        "pools": [make_pool("batch", "inference", 5, ["l1"], survive_site_losses=0)],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("batch", "A", "l1"): 5}


def test_sites_in_one_failure_domain_fail_together(facts, check, make_site, make_pool):
    # A and B share dc1. Surviving dc1's loss needs 4 nodes at C; surviving C's loss needs 4 in dc1,
    # at A (first site) on the tie: 4·1 + 4·2 = 12 USD/h. Without the shared domain it would be
    # 2 + 2 + 2 nodes at 2 + 2 + 4 = 8 USD/h.
    data = {
        "sites": [
            make_site("A", failure_domain="dc1", price_per_gpu_hour={"l1": 1.0}),
            make_site("B", failure_domain="dc1", price_per_gpu_hour={"l1": 1.0}),
            make_site("C", price_per_gpu_hour={"l1": 2.0}),
        ],
        "pools": [make_pool("chat", "inference", 4, ["l1"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("chat", "A", "l1"): 4, ("chat", "C", "l1"): 4}
    assert result.cost_per_hour == pytest.approx(12.0)
    for s in data["sites"]:
        s.pop("failure_domain", None)
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert result.cost_per_hour == pytest.approx(8.0)


def test_power_envelope_counts_pue(facts, check, make_site, make_pool):
    # "cheap": 0.1 MW at PUE 1.25 holds 0.1 / (10 kW × 1.25) = 8 nodes of h8. The other 4 go to "dear".
    data = {
        "sites": [
            make_site("cheap", power_mw=0.1, pue=1.25, price_per_gpu_hour={"h8": 1.0}),
            make_site("dear", price_per_gpu_hour={"h8": 2.0}),
        ],
        "pools": [make_pool("chat", "inference", 12, ["h8"], survive_site_losses=0)],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("chat", "cheap", "h8"): 8, ("chat", "dear", "h8"): 4}
    assert result.site_power_mw == {"cheap": pytest.approx(0.1), "dear": pytest.approx(0.04)}


def test_quota_zero_means_none_and_missing_means_unlimited(facts, check, make_site, make_pool):
    data = {
        "sites": [
            make_site("none", quota_gpus={"H100": 0}, price_per_gpu_hour={"h8": 1.0}),
            make_site("unlimited", quota_gpus={"A100": 8}, price_per_gpu_hour={"h8": 2.0}),
        ],
        "pools": [make_pool("t", "training", 50, ["h8"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("t", "unlimited", "h8"): 50}


def test_an_unpriced_type_is_not_offered_but_a_site_without_prices_counts_as_free(facts, check, make_site, make_pool):
    data = {
        "sites": [
            make_site("priced", price_per_gpu_hour={"a8": 1.0}),  # h8 not offered here
            make_site("unknown"),  # no price table: everything at 0, noted
            make_site("dear", price_per_gpu_hour={"h8": 9.0}),
        ],
        "pools": [make_pool("t", "training", 2, ["h8"]), make_pool("u", "training", 2, ["a8"], regions=["r1"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("t", "unknown", "h8"): 2, ("u", "unknown", "a8"): 2}
    assert result.cost_per_hour == 0.0
    assert "no price table at unknown" in result.explanation
    data["sites"].pop(1)
    problem, result = _solve(data, facts)
    assert _placed(result) == {("t", "dear", "h8"): 2, ("u", "priced", "a8"): 2}
    assert result.explanation == ""


def test_carbon_price_moves_load_to_the_cleaner_grid(facts, check, make_site, make_pool):
    # Same price; "coal" at 800 g/kWh, "hydro" at 20. At 100 USD/t a 10 kW node adds
    # 10 × 800 / 1e6 × 100 = 0.8 USD/h at coal and 0.02 at hydro.
    data = {
        "sites": [
            make_site("coal", carbon_g_per_kwh=800.0, price_per_gpu_hour={"h8": 1.0}),
            make_site("hydro", carbon_g_per_kwh=20.0, price_per_gpu_hour={"h8": 1.0}),
        ],
        "pools": [make_pool("t", "training", 10, ["h8"])],
        "carbon_price_per_tonne": 100.0,
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("t", "hydro", "h8"): 10}
    assert result.cost_per_hour == pytest.approx(10 * 8 * 1.0 + 10 * 0.02)
    assert result.carbon_tonnes_per_hour == pytest.approx(10 * 10 * 20 / 1e6)


def test_regions_and_clouds_limit_the_candidates(facts, check, make_site, make_pool):
    data = {
        "sites": [
            make_site("aws-cheap", region="us-east-1", price_per_gpu_hour={"h8": 1.0}),
            make_site("az", cloud="azure", region="eastus", price_per_gpu_hour={"zh8": 2.0}),
            make_site("gcp", cloud="gcp", region="us-central1", price_per_gpu_hour={"gh8": 3.0}),
        ],
        "pools": [make_pool("t", "training", 2, ["h8", "zh8", "gh8"], regions=["eastus", "us-central1"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("t", "az", "zh8"): 2}


def test_zones_training_pinned_and_inference_spread_evenly(facts, check, make_site, make_pool):
    data = {
        "sites": [
            make_site("A", zones=["a1", "a2", "a3"], price_per_gpu_hour={"h8": 1.0, "l1": 1.0}),
            make_site("B", zones=["b1", "b2"], price_per_gpu_hour={"h8": 1.5, "l1": 1.0}),
        ],
        "pools": [
            make_pool("t", "training", 3, ["h8"], zone="b2"),
            make_pool("chat", "inference", 7, ["l1"]),
        ],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    by_zone = {(a.pool, a.zone): a.nodes for a in result.assignments}
    assert by_zone[("t", "b2")] == 3
    assert sorted(by_zone[("chat", z)] for z in ("a1", "a2", "a3")) == [2, 2, 3]
    assert sorted(by_zone[("chat", z)] for z in ("b1", "b2")) == [3, 4]


def test_a_pool_of_zero_nodes_gets_no_assignment(facts, check, make_site, make_pool):
    data = {
        "sites": [make_site("A", price_per_gpu_hour={"h8": 1.0})],
        "pools": [make_pool("idle", "training", 0, ["h8"]), make_pool("off", "inference", 0, ["h8"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert result.assignments == []
    assert result.cost_per_hour == 0.0


def test_same_input_gives_identical_json(facts, make_site, make_pool):
    sites = [
        make_site(f"s{i}", zones=[f"s{i}-a", f"s{i}-b", f"s{i}-c"], power_mw=0.3 + 0.1 * (i % 3),
                  quota_gpus={"H100": 64 + 16 * i}, price_per_gpu_hour={"h8": 2.0 + (i % 4) * 0.25, "l1": 1.0},
                  failure_domain=f"dc{i // 2}")
        for i in range(8)
    ]
    pools = [make_pool(f"t{j}", "training", 3 + j, ["h8"]) for j in range(4)]
    pools += [make_pool(f"i{j}", "inference", 5 + 3 * j, ["l1", "h8"], survive_site_losses=1 + j % 2) for j in range(4)]
    data = {"sites": sites, "pools": pools}
    first = json.dumps(_solve(data, facts)[1].to_json())
    second = json.dumps(_solve(json.loads(json.dumps(data)), facts)[1].to_json())
    assert first == second
    assert "solve_seconds" not in json.loads(first)


def test_result_json_has_the_documented_keys(facts, make_site, make_pool):
    data = {"sites": [make_site("A", price_per_gpu_hour={"h8": 1.0})], "pools": [make_pool("t", "training", 1, ["h8"])]}
    _, result = _solve(data, facts)
    out = result.to_json(include_timing=True)
    for key in ("status", "assignments", "cost_per_hour", "site_power_mw", "mip_gap", "solve_seconds", "binding"):
        assert key in out
    assert set(out["assignments"][0]) == {"pool", "site", "zone", "instance_type", "nodes"}
    result.raise_if_infeasible()  # a placement: no error


def test_pool_sites_and_measured_node_power_override(facts, check, make_site, make_pool):
    # "cheap" measured h8 at 12.5 kW: 0.1 MW holds 8 nodes (the catalog's 10 kW would give 10).
    # "elsewhere" is cheaper still but the pool may only use "cheap" and "dear".
    data = {
        "sites": [
            make_site("elsewhere", price_per_gpu_hour={"h8": 0.5}),
            make_site("cheap", power_mw=0.1, node_power_kw={"h8": 12.5}, price_per_gpu_hour={"h8": 1.0}),
            make_site("dear", price_per_gpu_hour={"h8": 2.0}),
        ],
        "pools": [make_pool("chat", "inference", 12, ["h8"], survive_site_losses=0, sites=["cheap", "dear"])],
    }
    problem, result = _solve(data, facts)
    check(problem, facts, result)
    assert _placed(result) == {("chat", "cheap", "h8"): 8, ("chat", "dear", "h8"): 4}

"""Property tests on random small problems, checked independently of the solver.

* Every placement returned respects every power, quota, zone, region, price and survival constraint.
* Every capacity relaxation reported is sufficient: raising the limits by it makes the problem feasible.
* Every structural reason is real: the pool has no eligible (site, type) pair, or too few failure
  domains for the losses it must survive.
* On problems small enough to enumerate, the solver's cost is the brute-force optimum and it reports
  infeasible exactly when no placement exists.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gpufleet.placement import PlacementProblem, solve

TYPES_BY_CLOUD = {"aws": ["h8", "a8", "l1"], "azure": ["zh8"]}
ALL_TYPES = [t for types in TYPES_BY_CLOUD.values() for t in types]
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def sites(draw: Any, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        cloud = draw(st.sampled_from(["aws", "aws", "aws", "azure"]))
        types = TYPES_BY_CLOUD[cloud]
        priced = draw(st.lists(st.sampled_from(types), unique=True, max_size=len(types)))
        no_table = draw(st.booleans()) and draw(st.booleans())  # a quarter of sites
        site: dict[str, Any] = {
            "name": f"s{i}",
            "cloud": cloud,
            "region": draw(st.sampled_from(["r1", "r2"])),
            "zones": [f"s{i}-z{z}" for z in range(draw(st.integers(1, 3)))],
            "power_mw": draw(st.sampled_from([0.0, 0.02, 0.05, 0.1, 0.2, 1.0])),
            "pue": draw(st.sampled_from([1.0, 1.1, 1.25, 1.5])),
            "quota_gpus": draw(
                st.dictionaries(st.sampled_from(["H100", "A100", "L4"]), st.sampled_from([0, 4, 8, 16, 24, 40, 64]))
            ),
        }
        if not no_table:
            site["price_per_gpu_hour"] = {t: draw(st.sampled_from([0.5, 1.0, 1.25, 2.0, 3.0])) for t in priced}
        if draw(st.booleans()):
            site["carbon_g_per_kwh"] = draw(st.sampled_from([20.0, 300.0, 800.0]))
        if draw(st.booleans()):
            site["failure_domain"] = draw(st.sampled_from(["d1", "d2"]))
        out.append(site)
    return out


@st.composite
def pools(draw: Any, n: int, max_nodes: int, roles: list[str]) -> list[dict[str, Any]]:
    out = []
    for j in range(n):
        role = draw(st.sampled_from(roles))
        pool: dict[str, Any] = {
            "name": f"p{j}",
            "role": role,
            "nodes": 0 if draw(st.integers(0, 9)) == 0 else draw(st.integers(1, max_nodes)),
            "instance_types": draw(st.lists(st.sampled_from(ALL_TYPES), min_size=1, max_size=3, unique=True)),
        }
        if draw(st.booleans()):
            pool["regions"] = draw(st.lists(st.sampled_from(["r1", "r2"]), min_size=1, max_size=2, unique=True))
        if role == "inference":  # the same draws as ever; unsaid is 1, as the model's default once was
            pool["survive_site_losses"] = draw(st.integers(0, 2)) if draw(st.booleans()) else 1
        out.append(pool)
    return out


@st.composite
def problems(draw: Any, max_sites: int = 5, max_pools: int = 4, max_nodes: int = 12,
             roles: tuple[str, ...] = ("training", "inference")) -> dict[str, Any]:
    site_list = draw(sites(draw(st.integers(1, max_sites))))
    regions = {s["region"] for s in site_list}
    pool_list = draw(pools(draw(st.integers(1, max_pools)), max_nodes, list(roles)))
    for pool in pool_list:  # regions must name a site's region (else it is a SpecError)
        if "regions" in pool:
            pool["regions"] = [r for r in pool["regions"] if r in regions] or sorted(regions)
    data: dict[str, Any] = {"sites": site_list, "pools": pool_list}
    if draw(st.booleans()):
        data["carbon_price_per_tonne"] = draw(st.sampled_from([10.0, 100.0]))
    return data


def _eligible(data: dict[str, Any], facts: Any, pool: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(site, type) pairs a pool may use, from the rules in the issue, not from the solver."""
    out = []
    for s in data["sites"]:
        if "regions" in pool and s["region"] not in pool["regions"]:
            continue
        for t in pool["instance_types"]:
            prices = s.get("price_per_gpu_hour")
            if facts[t].cloud == s["cloud"] and (not prices or t in prices):
                out.append((s, t))
    return out


def _raise_limits(data: dict[str, Any], binding: list[Any]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    by_name = {s["name"]: s for s in out["sites"]}
    for b in binding:
        if b.kind == "power":
            by_name[b.where]["power_mw"] += b.shortfall
        else:
            name, _, gpu = b.where.rpartition("/")
            by_name[name]["quota_gpus"][gpu] += int(b.shortfall)
    return out


@SETTINGS
@given(data=problems())
def test_placements_are_feasible_and_explanations_hold(data, facts, check):
    problem = PlacementProblem.model_validate(data)
    result = solve(problem, facts)
    if result.ok:
        check(problem, facts, result)
        return
    assert result.status == "infeasible"
    assert result.binding, result.explanation
    kinds = {b.kind for b in result.binding}
    if kinds <= {"power", "quota"}:
        relaxed = PlacementProblem.model_validate(_raise_limits(data, result.binding))
        fixed = solve(relaxed, facts)
        check(relaxed, facts, fixed)
        for alternative in result.alternatives:
            relaxed = PlacementProblem.model_validate(_raise_limits(data, alternative))
            check(relaxed, facts, solve(relaxed, facts))
        return
    pools_by_name = {p["name"]: p for p in data["pools"]}
    for b in result.binding:
        pool = pools_by_name[b.where]
        eligible = _eligible(data, facts, pool)
        if not eligible:
            continue
        k = pool.get("survive_site_losses", 1)
        domains = {s.get("failure_domain") or f"site:{s['name']}" for s, _ in eligible}
        assert pool["role"] == "inference" and k >= len(domains), b


@SETTINGS
@given(data=problems())
def test_same_input_same_json(data, facts):
    problem = PlacementProblem.model_validate(data)
    assert solve(problem, facts).to_json() == solve(problem, facts).to_json()


def _brute_force(data: dict[str, Any], facts: Any) -> float | None:
    """Cheapest feasible placement by enumeration (nodes per option, 0..N each), or None."""
    carbon_price = data.get("carbon_price_per_tonne", 0.0)
    per_pool: list[list[tuple[float, dict[str, float], dict[tuple[str, str], int]]]] = []
    for pool in data["pools"]:
        n = pool["nodes"]
        options = _eligible(data, facts, pool)
        choices = []
        if n == 0:
            per_pool.append([(0.0, {}, {})])
            continue
        vectors: list[tuple[int, ...]]
        if pool["role"] == "training":
            vectors = [tuple(n if i == j else 0 for i in range(len(options))) for j in range(len(options))]
        else:
            vectors = list(itertools.product(range(n + 1), repeat=len(options)))
        k = pool.get("survive_site_losses", 1) if pool["role"] == "inference" else 0
        for vec in vectors:
            load: dict[str, int] = {}
            for (s, _), x in zip(options, vec):
                d = s.get("failure_domain") or f"site:{s['name']}"
                load[d] = load.get(d, 0) + x
            total = sum(vec)
            if total < n:
                continue
            if any(total - sum(load[d] for d in lost) < n
                   for lost in itertools.combinations(sorted(load), min(k, len(load)))):
                continue
            if k >= len(load) and k > 0:
                continue
            cost, kw, gpus = 0.0, {}, {}
            for (s, t), x in zip(options, vec):
                if not x:
                    continue
                f = facts[t]
                site_kw = x * f.node_power_kw * s["pue"]
                price = (s.get("price_per_gpu_hour") or {}).get(t, 0.0)
                cost += x * f.gpus * price + carbon_price * site_kw * s.get("carbon_g_per_kwh", 0.0) / 1e6
                kw[s["name"]] = kw.get(s["name"], 0.0) + site_kw
                gpus[(s["name"], f.gpu)] = gpus.get((s["name"], f.gpu), 0) + x * f.gpus
            choices.append((cost, kw, gpus))
        per_pool.append(choices)
    sizes = [len(c) for c in per_pool]
    total_combos = 1
    for size in sizes:
        total_combos *= max(size, 1)
    assume(total_combos <= 20000)
    limits = {s["name"]: s for s in data["sites"]}
    best = None
    for combo in itertools.product(*per_pool):
        kw: dict[str, float] = {}
        gpus: dict[tuple[str, str], int] = {}
        for _, k_, g_ in combo:
            for key, v in k_.items():
                kw[key] = kw.get(key, 0.0) + v
            for key2, v2 in g_.items():
                gpus[key2] = gpus.get(key2, 0) + v2
        if any(v > 1000 * limits[name]["power_mw"] + 1e-9 for name, v in kw.items()):
            continue
        if any(v > limits[name]["quota_gpus"].get(gpu, 10**9) for (name, gpu), v in gpus.items()):
            continue
        cost = sum(c for c, _, _ in combo)
        best = cost if best is None else min(best, cost)
    return best


@SETTINGS
@given(data=problems(max_sites=3, max_pools=3, max_nodes=4))
def test_cost_is_the_brute_force_optimum(data, facts):
    best = _brute_force(data, facts)
    result = solve(PlacementProblem.model_validate(data), facts, mip_rel_gap=0.0)
    if best is None:
        assert result.status == "infeasible"
        return
    assert result.status == "optimal", result.explanation
    nodes = sum(p["nodes"] for p in data["pools"])
    # The tie-break may trade at most 0.001 USD per node against a real cost difference.
    assert abs(result.cost_per_hour - best) <= 1e-3 * max(nodes, 1) * 2 + 1e-6

"""What spot options cost the placement MILP, and what they save: the same seeded instances as
``placement_bench.py``, solved without spot and with spot offered at half the sites (every priced type
at 40 % of its list price), every inference pool allowed 40 % spot above a floor of 70 % of its nodes.

Prints, per size, the solve time and cost of both, their ratios (with / without), the share of
inference nodes placed on spot, and checks each spot placement against its floor and share.

    .venv/bin/python benchmarks/spot_bench.py [--seed 1] [--time-limit-s 10]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.placement_bench import FACTS, instance
from gpufleet.placement import PlacementProblem, solve

SPOT_PRICE_SHARE = 0.4
MAX_FRACTION = 0.4
FLOOR_SHARE = 0.7


def with_spot(data: dict[str, Any]) -> dict[str, Any]:
    """The instance with spot offers at every other site and a spot share on every inference pool."""
    out = {**data, "sites": [dict(s) for s in data["sites"]], "pools": [dict(p) for p in data["pools"]]}
    for i, site in enumerate(out["sites"]):
        if i % 2 == 0 and site.get("price_per_gpu_hour"):
            site["spot_price_per_gpu_hour"] = {t: round(p * SPOT_PRICE_SHARE, 4)
                                               for t, p in site["price_per_gpu_hour"].items()}
    for pool in out["pools"]:
        if pool["role"] == "inference":
            pool["spot"] = {"max_fraction": MAX_FRACTION}
            pool["peak_nodes"] = int(pool["nodes"] * FLOOR_SHARE)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit-s", type=float, default=10.0)
    args = parser.parse_args()
    print(f"seed {args.seed}, time limit {args.time_limit_s:g} s; spot at half the sites, {SPOT_PRICE_SHARE:.0%} of "
          f"list, max_fraction {MAX_FRACTION}, floor {FLOOR_SHARE:.0%} of nodes")
    print(f"{'sites':>5} {'pools':>5} {'s no spot':>9} {'s spot':>8} {'time x':>7} {'USD/h no spot':>14} "
          f"{'USD/h spot':>11} {'cost x':>7} {'spot share':>10}")
    for n_sites, n_pools in ((10, 10), (50, 40), (200, 100)):
        data = instance(n_sites, n_pools, args.seed)
        runs = []
        for variant in (data, with_spot(data)):
            problem = PlacementProblem.model_validate(variant)
            start = time.perf_counter()
            result = solve(problem, FACTS, time_limit_s=args.time_limit_s)
            runs.append((time.perf_counter() - start, result, problem))
        (t0, r0, _), (t1, r1, problem) = runs
        pools = {p.name: p for p in problem.pools}
        inference = [a for a in r1.assignments if pools[a.pool].role == "inference"]
        spot = sum(a.nodes for a in inference if a.spot)
        for name, pool in pools.items():  # each pool within its share and above its floor
            mine = [a for a in inference if a.pool == name]
            total, on_spot = sum(a.nodes for a in mine), sum(a.nodes for a in mine if a.spot)
            assert on_spot <= MAX_FRACTION * total + 1e-9 and total - on_spot >= pool.floor_nodes - 1e-9 or not mine
        share = spot / max(sum(a.nodes for a in inference), 1)
        c0, c1 = r0.cost_per_hour or 0.0, r1.cost_per_hour or 0.0
        print(f"{n_sites:>5} {n_pools:>5} {t0:>9.2f} {t1:>8.2f} {t1 / t0:>7.2f} {c0:>14,.0f} {c1:>11,.0f} "
              f"{(c1 / c0 if c0 else 0):>7.3f} {share:>10.1%}  ({r0.status} / {r1.status})", flush=True)


if __name__ == "__main__":
    main()

"""What spot options cost the placement, and what they save: the same seeded instances as
``placement_bench.py``, solved without spot and with spot offered at half the sites (every priced type
at 40 % of its list price), every inference pool allowed 40 % spot above a floor of 70 % of its nodes.

Prints, per size, the wall-clock and CPU seconds and the cost of both solves, their ratios (with /
without), the share of inference nodes placed on spot, the status and gap of the spot solve, and checks
each spot placement against its floor and share. CPU seconds (``time.process_time``) are the steadier
figure on a shared machine: wall-clock time grows with whatever else runs.

``--before DIR`` also solves the spot instances with the gpufleet package of DIR (a git worktree of an
earlier commit, e.g. ``git worktree add /tmp/before <commit>``) in a subprocess, and prints its
figures under each row: the joint program that offered every spot option beside every on-demand one.

    .venv/bin/python benchmarks/spot_bench.py [--seed 1] [--time-limit-s 10] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.placement_bench import FACTS, instance
from gpufleet.placement import PlacementProblem, solve

SPOT_PRICE_SHARE = 0.4
MAX_FRACTION = 0.4
FLOOR_SHARE = 0.7
SIZES = ((10, 10), (50, 40), (200, 100))


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


def timed(data: dict[str, Any], time_limit_s: float) -> tuple[float, float, Any, PlacementProblem]:
    """Wall-clock seconds, CPU seconds, the result and the problem of one solve."""
    problem = PlacementProblem.model_validate(data)
    wall, cpu = time.perf_counter(), time.process_time()
    result = solve(problem, FACTS, time_limit_s=time_limit_s)
    return time.perf_counter() - wall, time.process_time() - cpu, result, problem


def checked_spot_share(result: Any, problem: PlacementProblem) -> float:
    """The share of inference nodes on spot, after checking each pool's share and floor."""
    pools = {p.name: p for p in problem.pools}
    inference = [a for a in result.assignments if pools[a.pool].role == "inference"]
    for name, pool in pools.items():
        mine = [a for a in inference if a.pool == name]
        total, on_spot = sum(a.nodes for a in mine), sum(a.nodes for a in mine if a.spot)
        assert on_spot <= MAX_FRACTION * total + 1e-9 and total - on_spot >= pool.floor_nodes - 1e-9 or not mine
    return sum(a.nodes for a in inference if a.spot) / max(sum(a.nodes for a in inference), 1)


def spot_rows(seed: int, time_limit_s: float) -> list[dict[str, Any]]:
    """The spot solve of every size, as JSON rows (what ``--before`` reads from the earlier package)."""
    timed(with_spot(instance(10, 10, seed)), time_limit_s)  # warm-up: SciPy's import is no solve's cost
    rows = []
    for n_sites, n_pools in SIZES:
        wall, cpu, result, _ = timed(with_spot(instance(n_sites, n_pools, seed)), time_limit_s)
        rows.append({"wall_s": wall, "cpu_s": cpu, "usd_per_hour": result.cost_per_hour or 0.0,
                     "status": result.status, "gap": result.mip_gap or 0.0})
    return rows


def before_rows(before: Path, seed: int, time_limit_s: float) -> list[dict[str, Any]]:
    """:func:`spot_rows` run with the gpufleet package of ``before`` (this file's code, that package)."""
    here = str(Path(__file__).resolve().parents[1])
    code = (f"import json, sys; sys.path.insert(0, {str(before)!r}); import gpufleet.placement; "  # that gpufleet,
            f"sys.path.insert(0, {here!r}); from benchmarks.spot_bench import spot_rows; "  # these benchmarks
            f"print(json.dumps(spot_rows({seed}, {time_limit_s})))")
    env = {**os.environ, "PYTHONPATH": str(before)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=before, capture_output=True, text=True, check=True)
    rows: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit-s", type=float, default=10.0)
    parser.add_argument("--before", type=Path, help="a directory holding an earlier gpufleet package to compare with")
    args = parser.parse_args()
    print(f"seed {args.seed}, time limit {args.time_limit_s:g} s; spot at half the sites, {SPOT_PRICE_SHARE:.0%} of "
          f"list, max_fraction {MAX_FRACTION}, floor {FLOOR_SHARE:.0%} of nodes")
    print(f"{'sites':>5} {'pools':>5} {'wall s no spot':>14} {'spot':>6} {'x':>5} {'cpu s no spot':>13} {'spot':>6} "
          f"{'x':>5} {'USD/h no spot':>13} {'spot':>8} {'cost x':>6} {'spot share':>10}  status (gap)")
    before = before_rows(args.before.resolve(), args.seed, args.time_limit_s) if args.before else None
    timed(with_spot(instance(10, 10, args.seed)), args.time_limit_s)  # warm-up, as in spot_rows
    for i, (n_sites, n_pools) in enumerate(SIZES):
        data = instance(n_sites, n_pools, args.seed)
        w0, u0, r0, _ = timed(data, args.time_limit_s)
        w1, u1, r1, problem = timed(with_spot(data), args.time_limit_s)
        share = checked_spot_share(r1, problem)
        c0, c1 = r0.cost_per_hour or 0.0, r1.cost_per_hour or 0.0
        print(f"{n_sites:>5} {n_pools:>5} {w0:>14.2f} {w1:>6.2f} {w1 / w0:>5.2f} {u0:>13.2f} {u1:>6.2f} {u1 / u0:>5.2f} "
              f"{c0:>13,.0f} {c1:>8,.0f} {(c1 / c0 if c0 else 0):>6.3f} {share:>10.1%}  "
              f"{r0.status} / {r1.status} ({r1.mip_gap:.2%})", flush=True)
        if before is not None:
            b = before[i]
            b["usd_per_hour"] = b["usd_per_hour"] or 0.0  # no placement within the limit
            print(f"{'before:':>11} {'':>14} {b['wall_s']:>6.2f} {b['wall_s'] / w0:>5.2f} {'':>13} {b['cpu_s']:>6.2f} "
                  f"{b['cpu_s'] / u0:>5.2f} {'':>13} {b['usd_per_hour']:>8,.0f} {b['usd_per_hour'] / c0 if c0 else 0:>6.3f} "
                  f"{'':>10}  {b['status']} ({b['gap']:.2%})", flush=True)


if __name__ == "__main__":
    main()

"""How long ``gpufleet backtest`` takes, and what re-planning with the placement solver would cost.

The backtest re-plans each service every month with the sizing functions, on the instance type the
stack's plan (one ``build_plan``, with the placement solver) chose at the start. This measures, in
the same run:

* the worked case of docs/runway.md (one service, two years of weekly peaks, 21 re-plans per
  strategy): the stack's one ``build_plan`` and the replay of both strategies;
* a fleet of 1, 10 and 40 services (copies of the worked case's service with their own histories,
  three years of daily peaks each): the replay's seconds, and its ratio to the single-service run;
* the cost of the alternative: one ``build_plan`` of that fleet, times the re-plans a replay makes
  (what a MILP per re-plan would take), against the replay;
* the cost of planning each re-plan as ``gpufleet plan`` does: the 40-service fleet again with every
  service surviving the loss of one zone and declaring a scenario (the loss margin, the nodes left
  after losses each day and each scenario's runway at each re-plan), against the same fleet without.

    .venv/bin/python benchmarks/backtest_bench.py
"""

from __future__ import annotations

import datetime as dt
import math
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gpufleet.backtest import read_histories, run_backtest, strategies  # noqa: E402
from gpufleet.plan import build_plan  # noqa: E402
from gpufleet.spec import parse_fleet  # noqa: E402
from gpufleet.stackfile import load_stack  # noqa: E402

EXAMPLE = REPO / "docs" / "examples" / "backtest"


def worked_case() -> tuple[float, float, int]:
    """(plan s, replay s, re-plans) for the docs' worked case."""
    name, spec = load_stack(EXAMPLE / "Pulumi.backtest.yaml")
    histories = read_histories(EXAMPLE / "history", [w.name for w in spec.inference])
    t0 = time.perf_counter()
    plan = build_plan(spec, name, check=False)
    t1 = time.perf_counter()
    report = run_backtest(spec, plan, histories, strategies(), warmup_months=3)
    t2 = time.perf_counter()
    replans = sum(len(o.replans) for s in report.services for o in s.outcomes)
    return t1 - t0, t2 - t1, replans


def fleet(services: int, *, losses: bool = False) -> tuple[object, dict[str, list[tuple[dt.date, float]]]]:
    """A stack of ``services`` copies of the worked case's service, and a daily history for each;
    ``losses``: each survives one zone loss and declares a scenario."""
    _, spec = load_stack(EXAMPLE / "Pulumi.backtest.yaml")
    data = spec.model_dump(exclude_none=True)
    template = {k: v for k, v in data["inference"][0].items() if k != "forecast"}
    if losses:
        template |= {"survive_zone_losses": 1, "scenarios": [{"name": "launch", "growth_per_month": 0.25}]}
    rng = random.Random(7)
    data["inference"] = []
    histories = {}
    for n in range(services):
        growth = rng.uniform(0.02, 0.2)
        data["inference"].append({**template, "name": f"svc-{n:03d}", "forecast": {"p50": growth, "p90": growth * 2}})
        start, peak = dt.date(2024, 1, 1), rng.uniform(5_000, 50_000)
        histories[f"svc-{n:03d}"] = [(start + dt.timedelta(days=d),
                                      peak * math.exp(d / 30.4375 * math.log1p(growth) + rng.gauss(0, 0.03)))
                                     for d in range(3 * 365)]
    data["sites"][0]["quota_gpus"] = {"H100": 10_000_000}
    data["sites"][0]["power_mw"] = 10_000.0
    return parse_fleet(data), histories


def measure(services: int, *, losses: bool = False) -> dict[str, float]:
    spec, histories = fleet(services, losses=losses)
    t0 = time.perf_counter()
    plan = build_plan(spec, "bench", check=False)  # type: ignore[arg-type]
    t1 = time.perf_counter()
    report = run_backtest(spec, plan, histories, strategies(), warmup_months=3)  # type: ignore[arg-type]
    t2 = time.perf_counter()
    replans = max(len(o.replans) for s in report.services for o in s.outcomes)
    return {"plan": t1 - t0, "replay": t2 - t1, "replans": replans}


def main() -> None:
    plan_s, replay_s, replans = worked_case()
    print(f"worked case: build_plan {plan_s:.3f} s once, replay of both strategies {replay_s:.3f} s "
          f"({replans} re-plans)")
    results = {n: measure(n) for n in (1, 10, 40)}
    base = results[1]["replay"]
    print(f"{'services':>8} {'plan s':>8} {'replay s':>9} {'x vs 1':>7} {'MILP per re-plan s':>19} {'x replay':>9}")
    for n, r in results.items():
        milp = r["plan"] * r["replans"] * 2  # two strategies, each re-planning the whole fleet monthly
        print(f"{n:>8} {r['plan']:>8.3f} {r['replay']:>9.3f} {r['replay'] / base:>7.1f} {milp:>19.1f} "
              f"{milp / r['replay']:>9.1f}")
    margin = measure(40, losses=True)
    print(f"40 services surviving a zone loss, with a scenario: replay {margin['replay']:.3f} s, "
          f"x{margin['replay'] / results[40]['replay']:.2f} the same fleet without")


if __name__ == "__main__":
    main()

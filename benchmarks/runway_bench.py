"""How long `gpufleet runway` adds to a plan, for 10, 100 and 1,000 inference services.

Prints, per size: the plan's time, the runway report's time (every service under p50, p90 and a
scenario, every site's power and quota runway) and the report as a share of the plan, all measured
in this process. The goal: the report costs a small fraction of planning the same stack.

    .venv/bin/python benchmarks/runway_bench.py
"""

from __future__ import annotations

import datetime
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_bench import fleet  # noqa: E402

from gpufleet.plan import build_plan  # noqa: E402
from gpufleet.runway import runway_report  # noqa: E402
from gpufleet.spec import parse_fleet  # noqa: E402

AS_OF = datetime.date(2026, 12, 1)


def measure(services: int) -> tuple[float, float, int]:
    data = fleet(services)
    for site in data["sites"]:
        site["quota_gpus"] = {"H100": 10_000_000, "L40S": 10_000_000, "L4": 10_000_000}
    for i, service in enumerate(data["inference"]):
        growth = service.pop("growth_per_month")
        service["forecast"] = {"p50": growth, "p90": growth * 1.5 + 0.01}
        if i % 2 == 0:
            service["scenarios"] = [{"name": "viral", "growth_per_month": growth * 3 + 0.05}]
    spec = parse_fleet(data)
    t0 = time.perf_counter()
    plan = build_plan(spec, "bench", time_limit_s=60.0)
    t1 = time.perf_counter()
    report = runway_report(plan, spec, as_of=AS_OF)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(report.services)


def main() -> None:
    print(f"{'services':>8} {'plan s':>8} {'runway s':>9} {'runway/plan':>12}")
    for n in (10, 100, 1000):
        plan_s, runway_s, count = measure(n)
        print(f"{count:>8} {plan_s:>8.3f} {runway_s:>9.4f} {runway_s / plan_s:>12.3f}")


if __name__ == "__main__":
    main()

"""The replay, worked out by hand on a step history, and its calendar helpers.

The fixture service runs 2 replicas of 3,000 tokens/s per p5.48xlarge node (6,000 tokens/s, 8 H100
at $3.93 an hour each), 20 % headroom, a 30-day lead time and a 30-day horizon. Its weekly peak is
6,000 tokens/s until 2025-05-26 and 15,000 from 2025-06-02; the replay starts after a 3-month
warm-up, on 2025-04-06, re-plans on the 6th of each month and ends on 2025-08-31 (the last week).

* Start: 6,000 · 1.2 / 3,000 = 2.4 → 3 replicas → 2 nodes (12,000 tokens/s).
* 2025-06-06: the peak known is 15,000: 6 replicas → 3 nodes, 1 ordered, serving from 2025-07-06.
* Short from 2025-06-02 to 2025-07-05: 34 days, 3,000 tokens/s × 24 h each = 2,448,000 token-hours.
* GPU-hours: 2 nodes × 8 × 24 h × 91 days + 3 × 8 × 24 × 57 = 67,776, × $3.93 = $266,359.68.

With the range forecast (p50 0 %, p90 50 % a month) the p90 plan starts at 6,000 · 1.5^(60/30.4375)
· 1.2 / 3,000 = 5.34 → 6 replicas → 3 nodes, which carries the step (0 days short).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import pytest

from backtest_fixtures import FIXTURES, step_points
from gpufleet.backtest import BacktestReport, run_backtest, strategies
from gpufleet.backtest.replay import add_months, demand_by_day
from gpufleet.forecast import fit_history
from gpufleet.plan import build_plan
from gpufleet.stackfile import load_stack


@lru_cache(maxsize=None)
def backtest(stack: str, confidence: str = "p90", margin_days: float = 30.0) -> BacktestReport:
    name, spec = load_stack(FIXTURES / stack)
    plan = build_plan(spec, name, check=False)
    return run_backtest(spec, plan, {"chat-70b": step_points()}, strategies(confidence, margin_days), warmup_months=3)


@pytest.mark.parametrize("strategy", ["point", "runway"])
def test_a_step_in_demand_runs_short_until_the_order_lands(strategy: str) -> None:
    [svc] = backtest("Pulumi.step.yaml").services
    o = svc.outcome(strategy)
    assert (o.start, o.end, o.days) == (dt.date(2025, 4, 6), dt.date(2025, 8, 31), 148)
    assert (o.initial_nodes, o.final_nodes) == (2, 3)
    assert [(x.ordered_on, x.nodes, x.lands_on) for x in o.orders] == [(dt.date(2025, 6, 6), 1, dt.date(2025, 7, 6))]
    assert (o.days_short, o.first_short_on, o.longest_short_run_days) == (34, dt.date(2025, 6, 2), 34)
    assert o.unserved_token_hours == pytest.approx(2_448_000)
    assert o.provisioned_gpu_hours == pytest.approx(67_776)
    assert o.over_provisioned_gpu_hours == 0
    assert o.usd == pytest.approx(266_359.68)


def test_the_runway_policy_names_why_it_ordered() -> None:
    [svc] = backtest("Pulumi.step.yaml").services
    [order] = svc.outcome("runway").orders
    assert order.reason == "runway 0 days at p90 < lead time 30 + margin 30"
    assert svc.outcome("point").orders[0].reason == "plan at p50"


def test_a_p90_range_carries_the_step_the_point_forecast_misses() -> None:
    report = backtest("Pulumi.step-range.yaml")
    [svc] = report.services
    point, runway = svc.outcome("point"), svc.outcome("runway")
    assert (point.initial_nodes, point.days_short) == (2, 34)
    assert (runway.initial_nodes, runway.days_short, runway.unserved_token_hours) == (3, 0, 0)
    # 2025-06-06: 15,000 · 2.225 · 1.2 / 3,000 = 13.35 → 14 replicas → 7 nodes, 4 more
    assert [(x.ordered_on, x.nodes) for x in runway.orders] == [(dt.date(2025, 6, 6), 4)]
    # 3 nodes before the step serve 18,000 tokens/s, a 6,000 peak needs 2 with headroom: 1 node over
    assert runway.over_provisioned_gpu_hours > point.over_provisioned_gpu_hours
    totals = report.totals()
    assert totals["runway"]["usd"] > totals["point"]["usd"]
    assert totals["point"]["days_short"] == 34 and totals["runway"]["days_short"] == 0


def test_a_history_service_refits_what_was_known_at_each_replan(tmp_path: object) -> None:
    # 10 %/month exactly, daily: every re-plan's fit says 10 %, and the peak is the last one known
    start = dt.date(2025, 1, 1)
    points = [(start + dt.timedelta(days=d), 1000.0 * 1.1 ** (d / 30.4375)) for d in range(200)]
    name, spec = load_stack(FIXTURES / "Pulumi.step.yaml")
    plan = build_plan(spec, name, check=False)
    spec = spec.model_copy(update={"inference": [spec.inference[0].model_copy(update={"history": "h.csv"})]})
    [svc] = run_backtest(spec, plan, {"chat-70b": points}, strategies(), warmup_months=2).services
    replans = svc.outcome("runway").replans
    assert [r.on for r in replans[:3]] == [dt.date(2025, 3, 1), dt.date(2025, 4, 1), dt.date(2025, 5, 1)]
    for r in replans:
        known = [p for p in points if p[0] < r.on]
        assert r.points == len(known)
        assert r.peak_tokens_per_s == known[-1][1]
        assert r.growth_per_month == pytest.approx(fit_history(known, ["p90"], horizon_months=60 / 30.4375).growth_per_month("p90"))
        assert r.growth_per_month == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize(("day", "months", "expected"), [
    (dt.date(2025, 1, 31), 1, dt.date(2025, 2, 28)),
    (dt.date(2024, 1, 31), 1, dt.date(2024, 2, 29)),
    (dt.date(2025, 11, 6), 2, dt.date(2026, 1, 6)),
    (dt.date(2025, 12, 31), 12, dt.date(2026, 12, 31)),
])
def test_add_months_keeps_the_day_or_the_months_last(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected


def test_a_point_covers_the_days_up_to_the_next() -> None:
    days = demand_by_day([(dt.date(2025, 1, 1), 1.0), (dt.date(2025, 1, 8), 2.0), (dt.date(2025, 1, 10), 3.0)])
    assert [days[dt.date(2025, 1, d)] for d in (1, 7, 8, 9, 10, 11)] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert max(days) == dt.date(2025, 1, 11)  # the last point lasts as long as the gap before it (2 days)

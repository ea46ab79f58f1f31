"""Properties of the replay, over random weekly histories and forecast ranges (Hypothesis).

Both strategies keep the nodes installed and on order at the largest target seen so far, and the
runway strategy's target is never below the point forecast's when its quantile's growth is not, so
on any history it has at least as much capacity serving every day: never more days short, never
fewer GPU-hours provisioned.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from hypothesis import given, settings
from hypothesis import strategies as st

from backtest_fixtures import FIXTURES
from gpufleet.backtest import run_backtest, strategies
from gpufleet.plan import FleetPlan, build_plan
from gpufleet.spec import FleetSpec
from gpufleet.stackfile import load_stack


@lru_cache(maxsize=1)
def stack() -> tuple[FleetSpec, FleetPlan]:
    name, spec = load_stack(FIXTURES / "Pulumi.step-range.yaml")
    return spec, build_plan(spec, name, check=False)


weekly_peaks = st.lists(st.floats(min_value=100.0, max_value=200_000.0), min_size=20, max_size=60)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(peaks=weekly_peaks, p50=st.floats(min_value=0.0, max_value=0.3), spread=st.floats(min_value=0.0, max_value=0.5),
       margin=st.floats(min_value=0.0, max_value=120.0))
def test_the_runway_strategy_is_never_shorter_of_capacity(peaks: list[float], p50: float, spread: float,
                                                          margin: float) -> None:
    spec, plan = stack()
    service = spec.inference[0].model_copy(update={"forecast": {"p50": p50, "p90": p50 + spread}})
    spec = spec.model_copy(update={"inference": [service]})
    points = [(dt.date(2025, 1, 6) + dt.timedelta(days=7 * i), peak) for i, peak in enumerate(peaks)]
    [svc] = run_backtest(spec, plan, {service.name: points}, strategies("p90", margin), warmup_months=3).services
    point, runway = svc.outcome("point"), svc.outcome("runway")
    assert runway.days_short <= point.days_short
    assert runway.unserved_token_hours <= point.unserved_token_hours + 1e-6
    assert runway.provisioned_gpu_hours >= point.provisioned_gpu_hours
    assert point.days == runway.days == (points[-1][0] + dt.timedelta(days=7) - point.start).days

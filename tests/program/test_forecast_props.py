"""The program with forecast ranges: a history read beside the stack file, the resolved range in
the components' demand props, and the pack agreeing with the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufleet.forecast import growth_at
from gpufleet.offline import run_program
from gpufleet.plan import build_plan
from gpufleet.preview import run_preview
from gpufleet.stackfile import load_stack

STACK = Path(__file__).resolve().parents[1] / "fixtures" / "runway" / "Pulumi.runway.yaml"


def test_demand_props_carry_the_resolved_forecast() -> None:
    run = run_program(STACK)
    stack, spec = load_stack(STACK)
    plan = build_plan(spec, stack)
    for service in spec.inference:
        for pool in plan.pools_of(service.name):
            demand = run.named(pool.name).inputs["demand"]
            assert demand["forecast"] == pytest.approx(service.forecast)
            assert demand["growth_per_month"] == pytest.approx(growth_at(service, spec.plan_confidence))
            assert demand["growth_per_month"] == pytest.approx(pool.sizing["inputs"]["growth_per_month"])
            assert [s["name"] for s in demand["scenarios"]] == [s.name for s in service.scenarios]
            assert growth_at(demand, "p50") == pytest.approx(growth_at(service, "p50"))
    embed = next(s for s in spec.inference if s.history)
    assert set(run.named(plan.pools_of(embed.name)[0].name).inputs["demand"]["forecast"]) >= {"p1", "p50", "p99"}


def test_the_pack_passes_the_plan_sized_at_p90() -> None:
    result = run_preview(STACK)
    assert result.exit_code == 0, result.to_json()

"""``runway-covers-lead-time``: the rule on the baseline with one change, then through the engine's
protocol (the pack as a process), and a real stack planned at p50 against its own p90 forecast.

Hand-computed runways (``runway = 30.4375 · ln(capacity / (peak · (1 + headroom))) / ln(1 + g)`` days):
the baseline's ``chat-70b`` keeps 12 of its 18 p5.48xlarge nodes after losing one of three zones,
12 × 6,000 = 72,000 tokens/s, against a 40,000 tokens/s peak with 20 % headroom (48,000):

* at 8 %/month: 30.4375 · ln 1.5 / ln 1.08 = 160.4 days (passes 30 + 30);
* at 40 %/month: 30.4375 · ln 1.5 / ln 1.4 = 36.7 days: it runs out on day 36, 2026-07-07 from
  2026-06-01, and with a 30-day lead time must be ordered by 2026-06-07.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpufleet.engine import PolicyEngine, parse_policy_config, reconcile_policy_config
from gpufleet.errors import SpecError
from gpufleet.policy.config import BY_NAME
from gpufleet.policy.pack import run_rule
from gpufleet.policy.rules import RULES, RuleResult
from tests.policies.policy_baseline import UNKNOWN, Stack

POLICY = "runway-covers-lead-time"
AS_OF = {"as_of": "2026-06-01"}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def run(stack: Stack, config: dict[str, Any] | None = None) -> RuleResult:
    return run_rule(BY_NAME[POLICY], RULES[POLICY], stack.policy_resources(), {**AS_OF, **(config or {})})


def messages(stack: Stack, config: dict[str, Any] | None = None) -> list[str]:
    result = run(stack, config)
    assert not result.unknown, result.unknown
    return [f.message for f in result.findings]


def fast_p90(stack: Stack) -> None:
    """chat-70b forecasts 8 %/month at p50 and 40 % at p90."""
    stack.props("chat-70b-aws-use1")["demand"]["forecast"] = {"p50": 0.08, "p90": 0.4}


# --- the rule --------------------------------------------------------------------------------------


def test_the_baseline_passes(stack: Stack) -> None:
    assert messages(stack) == []


def test_a_fast_p90_forecast_fails_naming_runway_lead_time_and_order_by(stack: Stack) -> None:
    fast_p90(stack)
    [msg] = messages(stack)
    assert msg.startswith("chat-70b: runway 37 days at p90 (40.0%/month growth): 12 nodes carry 72,000 tokens/s "
                          "after losing 1 zone, the forecast peak 40,000 tokens/s with 20% headroom outgrows it on "
                          "2026-07-07; the lead time is 30 days + 30-day margin, so order by 2026-06-07 (in 6 days, "
                          "as of 2026-06-01)")


def test_the_policy_confidence_is_its_own(stack: Stack) -> None:
    fast_p90(stack)
    assert messages(stack, {"confidence": "p50"}) == []  # 160 days at 8 %/month


def test_the_margin_counts(stack: Stack) -> None:
    # 160.4 days at 8 %/month: enough for 30 + 130, not for 30 + 131
    assert messages(stack, {"margin_days": 130}) == []
    [msg] = messages(stack, {"margin_days": 131})
    assert msg.startswith("chat-70b: runway 160 days at p90 (8.0%/month growth)")
    assert "the lead time is 30 days + 131-day margin, so order by 2026-10-09 (in 130 days" in msg


def test_an_autoscaler_maximum_lowered_by_hand_shortens_the_runway(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = 12  # 8 left after a zone loss: 48,000 tokens/s
    [msg] = messages(stack)
    assert msg.startswith("chat-70b: runway 0 days at p90")
    assert "order by 2026-05-02 (30 days ago" in msg


def test_a_floor_raises_the_bar(stack: Stack) -> None:
    [msg] = messages(stack, {"floors": {"chat-70b": {"growth_per_month": 0.5}}})
    assert msg.startswith("chat-70b: runway 30 days at p90 (50.0%/month growth)")
    assert msg.endswith("demand policy config floor")


def test_a_floors_scalar_growth_replaces_the_declared_range(stack: Stack) -> None:
    fast_p90(stack)  # the declaration fails at 40 %; the floor's 50 % is judged on its own, not as the range
    declared, floor = messages(stack, {"floors": {"chat-70b": {"growth_per_month": 0.5}}})
    assert declared.startswith("chat-70b: runway 37 days at p90 (40.0%/month growth)")
    assert floor.startswith("chat-70b: runway 30 days at p90 (50.0%/month growth)")
    assert "order by 2026-06-01 (today, as of 2026-06-01); demand policy config floor" in floor


def test_a_confidence_outside_the_forecast_fails_closed(stack: Stack) -> None:
    fast_p90(stack)
    [msg] = messages(stack, {"confidence": "p99"})
    assert msg.startswith("chat-70b: the runway at p99 cannot be judged")


def test_an_unknown_forecast_is_reported_not_passed(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1")["demand"]["forecast"] = {"p50": 0.08, "p90": UNKNOWN}
    result = run(stack)
    assert result.findings == []
    assert result.unknown == ["chat-70b-aws-use1: cannot verify demand.forecast because it is unknown until apply"]


@pytest.mark.parametrize("field", ["peak_tokens_per_s", "lead_time_days", "headroom", "survive_zone_losses"])
def test_an_unknown_deciding_field_is_reported_not_defaulted(stack: Stack, field: str) -> None:
    stack.props("chat-70b-aws-use1")["demand"][field] = UNKNOWN
    result = run(stack)
    assert result.findings == []
    assert result.unknown == [f"chat-70b-aws-use1: cannot verify demand.{field} because it is unknown until apply"]


def test_an_unknown_demand_is_reported_not_passed(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1")["demand"] = UNKNOWN
    result = run(stack)
    assert result.findings == []
    assert result.unknown == ["chat-70b-aws-use1: cannot verify demand because it is unknown until apply"]


def test_an_unknown_maximum_is_reported_not_passed(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = UNKNOWN
    result = run(stack)
    assert result.findings == []
    assert any("cannot verify" in u for u in result.unknown)


def test_an_impossible_as_of_is_a_config_error(stack: Stack) -> None:
    with pytest.raises(ValueError, match="its policy config is invalid: as_of: '2026-02-30' is not a calendar date"):
        run(stack, {"as_of": "2026-02-30"})


# --- through the engine's protocol -----------------------------------------------------------------


def analyze(engine: PolicyEngine, stack: Stack, config: dict[str, Any] | None = None) -> list[Any]:
    cfg = {POLICY: {**AS_OF, **(config or {})}}
    return engine.run(stack.stack_resources(), parse_policy_config(cfg)).diagnostics


def test_pass_and_fail_through_the_analyzer(engine: PolicyEngine, stack: Stack) -> None:
    assert analyze(engine, stack) == []
    fast_p90(stack)
    [d] = analyze(engine, stack)
    assert (d.policy, d.enforcement, d.blocking) == (POLICY, "mandatory", True)
    assert d.message.startswith("chat-70b: runway 37 days at p90")
    assert "order by 2026-06-07" in d.message
    assert d.urn.endswith("gpufleet:index:InferencePool::chat-70b-aws-use1")


def test_its_schema_and_defaults_reach_the_engine(engine: PolicyEngine) -> None:
    info = engine.info().policy(POLICY)
    assert info.enforcement == "mandatory"
    props = info.config_schema["properties"]  # type: ignore[index]
    assert props["confidence"]["default"] == "p90" and props["margin_days"]["default"] == 30
    assert props["as_of"]["default"] == "today"


@pytest.mark.parametrize(("config", "expected"), [
    ({"confidence": "q90"}, f"{POLICY}.confidence: 'q90' does not match"),
    ({"confidence": "p100"}, f"{POLICY}.confidence: 'p100' does not match"),
    ({"margin_days": -1}, f"{POLICY}.margin_days: must be at least 0, got -1"),
    ({"as_of": "June 1st"}, f"{POLICY}.as_of: 'June 1st' does not match"),
    ({"margins": 3}, f"{POLICY}.margins: unknown property"),
])
def test_bad_config_is_rejected(engine: PolicyEngine, config: dict[str, Any], expected: str) -> None:
    with pytest.raises(SpecError) as exc:
        reconcile_policy_config(engine.info(), parse_policy_config({POLICY: config}), source="bad.json")
    assert expected in str(exc.value)


def test_an_impossible_date_the_schema_lets_through_fails_closed(engine: PolicyEngine, stack: Stack) -> None:
    [d] = analyze(engine, stack, {"as_of": "2026-02-30"})
    assert (d.policy, d.enforcement) == (POLICY, "mandatory")
    assert d.message.startswith(f"policy {POLICY} did not run: its policy config is invalid: as_of")


# --- a real stack: planned at p50, its own p90 outruns the plan -------------------------------------


def test_a_stack_planned_at_p50_against_a_fast_p90_is_blocked() -> None:
    from gpufleet.preview import run_preview

    config = FIXTURES / "policy-config" / "runway-as-of.json"
    blocked = run_preview(FIXTURES / "preview" / "Pulumi.runway-p50.yaml", config)
    assert blocked.verdict == "blocked"
    [v] = [v for v in blocked.violations if v.policy == POLICY]
    assert v.enforcement == "mandatory"
    assert v.message.startswith("chat-8b: runway ")
    assert " days at p90 (25.0%/month growth)" in v.message
    assert {x.policy for x in blocked.violations} == {POLICY}  # every other policy passes: the plan holds at p50
    planned_at_p90 = run_preview(FIXTURES / "preview" / "Pulumi.runway-p90.yaml", config)
    assert planned_at_p90.verdict == "pass", [v.message for v in planned_at_p90.violations]

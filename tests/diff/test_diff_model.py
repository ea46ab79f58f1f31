"""compare(): what changed between two sides, per workload, site, placement and policy."""

from __future__ import annotations

import json
import math

import pytest

from diff_fixtures import diff_of, plan_of, side
from gpufleet.diff import HOURS_PER_MONTH, Side, Violation, compare
from gpufleet.diff.figures import workload_figures


def test_nothing_changed_is_unchanged() -> None:
    d = diff_of("unchanged")
    assert d.unchanged
    assert not d.changed_workloads and not d.changed_sites and not d.moves
    assert d.gpus.change == 0 and d.power_mw.change == 0 and d.usd_per_month.change == 0
    assert not d.blocked and d.exit_code == 0
    assert [m.new for m in d.violations] == [False]  # the advisory one was already on base


def test_capacity_cut_changes_the_cut_workloads_and_marks_new_violations() -> None:
    d = diff_of("capacity-cut")
    changed = {w.name: w for w in d.changed_workloads}
    assert set(changed) == {"pretrain-70b", "chat-8b"}
    run = changed["pretrain-70b"]
    assert run.base and run.head
    assert (run.base.gpus, run.head.gpus) == (288, 192)  # nodes: 24 pins the run to 24 × 8 GPUs
    assert run.short and run.head.days_needed > run.head.deadline_days
    chat = changed["chat-8b"]
    assert chat.gpus_change < 0 and "demand" in chat.fields
    assert d.gpus_by_model["H100"].change == -96
    assert d.blocked and d.exit_code == 3
    # The floors (tests/fixtures/diff/policy-config.json) keep the base's demand: both cuts are new
    # violations; azure-eastus was over its (advisory) quota on base already.
    assert [(m.violation.policy, m.violation.resource_name, m.new) for m in d.violations] == [
        ("capacity-covers-demand", "chat-8b-gcp-usc1", True),
        ("capacity-covers-demand", "pretrain-70b-aws-use1", True),
        ("gpu-quota-respected", "azure-eastus", False),
    ]
    assert len(d.new_mandatory) == 2


def test_demand_raised_adds_capacity_and_keeps_headroom() -> None:
    d = diff_of("demand-raised")
    (chat,) = d.changed_workloads
    assert chat.name == "chat-8b" and chat.base and chat.head
    assert chat.head.demand_tokens_per_s > 2 * chat.base.demand_tokens_per_s
    assert chat.head.gpus > chat.base.gpus
    assert chat.head.headroom_pct is not None and chat.head.headroom_pct > 0
    assert d.gpus_by_model["L4"].change == chat.gpus_change > 0
    assert not d.blocked


def test_site_move_is_reported_as_a_move() -> None:
    d = diff_of("site-moved")
    # Leaving azure-eastus resolves its quota overrun.
    assert [(v.policy, v.resource_name) for v in d.resolved] == [("gpu-quota-respected", "azure-eastus")]
    assert d.violations == ()
    (move,) = d.moves
    assert move.workload == "summarize-70b"
    assert [p.site for p in move.before] == ["azure-eastus"]
    assert [(p.site, p.instance_type) for p in move.after] == [("aws-use1", "p5.48xlarge")]
    sites = {s.name: s for s in d.changed_sites}
    assert set(sites) == {"azure-eastus", "aws-use1"}
    assert sites["azure-eastus"].head is not None and sites["azure-eastus"].head.gpus == 0


def test_cost_is_hourly_price_times_730_hours() -> None:
    d = diff_of("demand-raised")
    assert d.usd_per_month.base == pytest.approx(plan_of("demand-raised", "base").usd_per_hour * HOURS_PER_MONTH)
    assert HOURS_PER_MONTH == 730.0


def test_headroom_matches_the_plan() -> None:
    plan = plan_of("unchanged", "base")
    chat = next(w for w in plan.workloads if w.name == "chat-8b")
    f = workload_figures(plan, chat)
    assert f.headroom_pct == pytest.approx((chat.tokens_per_s_at_max / chat.demand_at_horizon_tokens_per_s - 1) * 100)
    spare = chat.gpus_provisioned * (1 - chat.demand_at_horizon_tokens_per_s / chat.tokens_per_s_at_max)
    assert f.headroom_gpus == pytest.approx(spare)
    assert 0 < f.capacity_after_losses_tokens_per_s < f.capacity_tokens_per_s


def test_a_new_stack_has_an_empty_base() -> None:
    head = side("unchanged", "head")
    d = compare(Side.absent("base", "origin/main:stacks/Pulumi.fleet.yaml", "fleet"), head)
    assert {w.change for w in d.workloads} == {"added"}
    assert d.gpus.change == head.gpus
    assert all(m.new for m in d.violations)
    assert d.verdict_line().startswith("✅ Passes: new stack, +336 H100, +132 L4")


def test_a_removed_stack_has_an_empty_head() -> None:
    d = compare(side("unchanged", "base"), Side.absent("head", "HEAD:stacks/Pulumi.fleet.yaml", "fleet"))
    assert {w.change for w in d.workloads} == {"removed"}
    assert d.gpus.change == -d.base.gpus
    assert not d.blocked
    assert d.verdict_line().startswith("✅ Passes: stack removed, -336 H100")


def test_an_infeasible_head_is_blocked() -> None:
    d = compare(side("unchanged", "base"),
                Side.infeasible("head", "h.yaml", "fleet", "needs 1.2 MW more power at aws-use1"))
    assert d.blocked and d.exit_code == 3
    assert d.verdict_line() == "🚫 Blocked: no placement satisfies head (needs 1.2 MW more power at aws-use1)"


def test_same_policy_on_another_resource_is_new() -> None:
    plan = plan_of("unchanged", "base")
    old = Violation("p", "mandatory", "chat-8b", "short")
    base = Side.planned("base", "b", plan, [old])
    head = Side.planned("head", "h", plan, [old, Violation("p", "mandatory", "summarize-70b", "short")])
    d = compare(base, head)
    assert [(m.violation.resource, m.new) for m in d.violations] == [("summarize-70b", True), ("chat-8b", False)]
    assert d.verdict_line().startswith("🚫 Blocked: 1 new mandatory violation (1 already on base)")


def test_resolved_violations_are_listed() -> None:
    plan = plan_of("unchanged", "base")
    gone = Violation("p", "advisory", "x", "m")
    d = compare(Side.planned("base", "b", plan, [gone]), Side.planned("head", "h", plan, []))
    assert d.resolved == (gone,)
    assert not d.unchanged


def test_blocked_only_by_old_violations_says_so() -> None:
    plan = plan_of("unchanged", "base")
    v = Violation("p", "mandatory", "x", "m")
    d = compare(Side.planned("base", "b", plan, [v]), Side.planned("head", "h", plan, [v]))
    assert d.blocked
    assert d.verdict_line() == "🚫 Blocked: 1 mandatory violation (already on base) · no capacity change"


def test_json_is_stable_and_strict(case: str) -> None:
    d = diff_of(case)
    data = d.to_json()
    assert list(data) == ["schema_version", "stack", "verdict", "base", "head", "totals", "workloads", "sites",
                          "moves", "violations", "resolved_violations"]
    text = json.dumps(data, allow_nan=False)  # no NaN or Infinity: strict JSON
    assert json.loads(text) == data
    assert data["verdict"]["summary"] == d.verdict_line()
    assert data["verdict"]["exit_code"] == d.exit_code
    assert json.dumps(diff_of(case).to_json()) == text  # deterministic
    for w in data["workloads"]:
        for figures in (w["base"], w["head"]):
            if figures and figures["headroom_pct"] is not None:
                assert math.isfinite(figures["headroom_pct"])

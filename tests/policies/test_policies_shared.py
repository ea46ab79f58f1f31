"""``shared-site-limits``: the baseline stack's own draw (read from its resources) plus the other
stacks' draw from the policy config, against a shared site's envelope and quotas."""

from __future__ import annotations

from typing import Any

import pytest

from gpufleet.engine import PolicyEngine, parse_policy_config
from gpufleet.policy.config import BY_NAME
from gpufleet.policy.pack import run_rule
from gpufleet.policy.rules import RULES, RuleResult, check_power_within_envelope
from gpufleet.policy.resources import build_inventory
from tests.policies.policy_baseline import UNKNOWN, Stack

POLICY = "shared-site-limits"


def run(stack: Stack, sites: dict[str, Any]) -> RuleResult:
    return run_rule(BY_NAME[POLICY], RULES[POLICY], stack.policy_resources(), {"sites": sites})


def own_mw(stack: Stack) -> float:
    """The baseline's draw at aws-use1, as power-within-envelope reports it once the envelope is tiny."""
    stack.props("aws-use1")["power_mw"] = 0.001
    [finding] = check_power_within_envelope(build_inventory(stack.policy_resources()), {}).findings
    stack.props("aws-use1")["power_mw"] = 2.0
    return float(finding.message.split(" MW at full scale")[0].split(": ")[1])


def shared(others_mw: float, *, quota: dict[str, int] | None = None, gpus: int = 0) -> dict[str, Any]:
    return {"aws-use1": {"power_mw": 2.0, "quota_gpus": quota or {},
                         "other_stacks": {"team-b": {"power_mw": others_mw, "gpus": {"H100": gpus}}}}}


def test_fits_with_the_other_stacks_draw_then_blocks_past_the_envelope(stack: Stack) -> None:
    mine = own_mw(stack)
    assert run(stack, shared(2.0 - mine - 0.01)).findings == []
    [finding] = run(stack, shared(2.0 - mine + 0.05)).findings
    assert finding.message.startswith("aws-use1: 2.05 MW at full scale over 2 stack(s) exceeds the 2 MW envelope "
                                      "by 0.05 MW (team-b ")
    assert f"this stack {mine:,.2f} MW" in finding.message
    assert finding.urn.endswith("gpufleet:index:SiteNetwork::aws-use1")


def test_a_shared_quota(stack: Stack) -> None:
    assert run(stack, shared(0.0, quota={"H100": 10_000}, gpus=100)).findings == []
    [finding] = run(stack, shared(0.0, quota={"H100": 600}, gpus=100)).findings
    assert finding.message == ("aws-use1: 660 H100 over 2 stack(s) exceed the quota of 600 by 60 "
                               "(team-b 100, this stack 560)")


def test_a_stale_config_is_a_violation(stack: Stack) -> None:
    [finding] = run(stack, {"eu-west": shared(0.0)["aws-use1"]}).findings
    assert "eu-west: the policy config gives other stacks' draw at this site, but the stack has no such site" \
        in finding.message
    config = shared(0.0)
    config["aws-use1"]["power_mw"] = 3.0
    [finding] = run(stack, config).findings
    assert "the stack declares a 2 MW envelope, the policy config 3 MW" in finding.message


def test_no_config_checks_nothing_and_a_bad_one_is_refused(stack: Stack) -> None:
    assert run(stack, {}).findings == []
    with pytest.raises(ValueError, match="other_stacks"):
        run(stack, {"aws-use1": {"power_mw": 2.0}})
    with pytest.raises(ValueError, match="must be at least 0"):
        run(stack, shared(-1.0))


def test_pass_and_fail_through_the_analyzer_protocol(engine: PolicyEngine, stack: Stack) -> None:
    mine = own_mw(stack)
    ok = engine.run(stack.stack_resources(), parse_policy_config({POLICY: {"sites": shared(0.1)}})).diagnostics
    assert [d for d in ok if d.policy == POLICY] == []
    over = engine.run(stack.stack_resources(),
                      parse_policy_config({POLICY: {"sites": shared(2.0 - mine + 0.5)}})).diagnostics
    [d] = [d for d in over if d.policy == POLICY]
    assert d.blocking and "exceeds the 2 MW envelope by 0.50 MW" in d.message


def test_unknown_values_elsewhere_do_not_concern_it(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = UNKNOWN
    assert run(stack, {}).unknown == []  # no shared site: nothing to verify
    gcp = {"gcp-usc1": {"power_mw": 1.5, "other_stacks": {"team-b": {"power_mw": 0.1}}}}
    result = run(stack, gcp)
    assert (result.findings, result.unknown) == ([], [])
    assert run(stack, shared(0.0)).unknown  # at the shared site it cannot verify the draw

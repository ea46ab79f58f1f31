"""The pack's AWS reader: a cluster on a capacity reservation may launch into the reservation's own
placement group, which the stack does not create; any other group must be a cluster group of the stack."""

from __future__ import annotations

from gpufleet.policy.config import BY_NAME
from gpufleet.policy.pack import run_rule
from gpufleet.policy.rules import RULES
from tests.policies.policy_baseline import Stack, baseline

POLICY = "training-fabric-complete"


def _messages(stack: Stack) -> list[str]:
    result = run_rule(BY_NAME[POLICY], RULES[POLICY], stack.policy_resources(), {})
    assert not result.unknown, result.unknown
    return [f.message for f in result.findings]


def _in_an_outside_group(stack: Stack) -> Stack:
    stack = stack.without("pretrain-70b-aws-use1-pg")
    stack.props("pretrain-70b-aws-use1-asg")["placementGroup"] = "reserved-p5"
    stack.props("pretrain-70b-aws-use1-lt")["placement"] = {"groupName": "reserved-p5"}
    return stack


def test_a_reserved_cluster_may_launch_into_the_reservations_own_group() -> None:
    stack = _in_an_outside_group(baseline())
    stack.props("pretrain-70b-aws-use1-lt")["capacityReservationSpecification"] = {
        "capacityReservationTarget": {"capacityReservationId": "cr-0123456789abcdef0"}}
    assert _messages(stack) == []


def test_without_a_reservation_a_group_the_stack_does_not_create_is_a_violation() -> None:
    [msg] = _messages(_in_an_outside_group(baseline()))
    assert "names placement group reserved-p5, which this stack does not create" in msg

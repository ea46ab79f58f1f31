"""``on-demand-floor-covers-peak`` on the spot-mixed stack as a preview sends it (computed values
unknown): it passes as built, and blocks when the on-demand part is cut below the peak, when more runs
on spot than the service allows, and when the on-demand share cannot be read."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpufleet.engine import PolicyEngine, StackResource, analyzed_resources, parse_policy_config
from gpufleet.names import UNKNOWN_VALUES
from gpufleet.offline import run_program
from gpufleet.policy.config import BY_NAME
from gpufleet.policy.pack import run_rule
from gpufleet.policy.resources import Resource
from gpufleet.policy.rules import RULES
from gpufleet.policy.spot import NAME
from tests.policies.conftest import PACK_DIR

STACK = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.spot-inference.yaml"
ASG = "aws:autoscaling/group:Group"
SETTING = "azure-native:monitor:AutoscaleSetting"
UNKNOWN = sorted(UNKNOWN_VALUES)[0]


@pytest.fixture(scope="module")
def preview() -> list[StackResource]:
    return analyzed_resources(run_program(STACK))


def _edit(resources: list[StackResource], type_token: str, name_end: str,
          change: Callable[[dict[str, Any]], None]) -> list[StackResource]:
    out = copy.deepcopy(resources)
    (target,) = [r for r in out if r.type == type_token and r.name.endswith(name_end)]
    change(target.properties)
    return out


def _findings(resources: list[StackResource]) -> tuple[list[str], list[str]]:
    plain = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.properties, parent=r.parent,
                      dependencies=tuple(r.dependencies)) for r in resources]
    result = run_rule(BY_NAME[NAME], RULES[NAME], plain, {})
    return [f.message for f in result.findings], result.unknown


def _distribution(props: dict[str, Any]) -> dict[str, Any]:
    distribution: dict[str, Any] = props["mixedInstancesPolicy"]["instancesDistribution"]
    return distribution


def test_the_stack_as_built_passes(preview: list[StackResource]) -> None:
    assert _findings(preview) == ([], [])


def _below_the_peak(resources: list[StackResource]) -> list[StackResource]:
    """The forecast peak needs 9 nodes: AWS all spot above a base of 0, Azure's on-demand sets (one per
    zone: 5 + 5 + 5) at most 12, zone 1's cut to 2."""
    def at_most_2(props: dict[str, Any]) -> None:
        props["profiles"][0]["capacity"]["maximum"] = "2"

    cut = _edit(resources, ASG, "assistant-70b-aws-use2-spot-nodes", lambda p: _distribution(p).update(onDemandBaseCapacity=0))
    return _edit(cut, SETTING, "assistant-70b-azure-westus3-z1-autoscale", at_most_2)


def test_an_on_demand_part_cut_below_the_peak_blocks(preview: list[StackResource]) -> None:
    (message,) = [m for m in _findings(_below_the_peak(preview))[0] if "reclaimed" in m]
    assert message.startswith("assistant-70b: after 100% of its 21 spot nodes are reclaimed during its worst declared "
                              "loss (1 zone, 1 failure domain), 0.0 nodes remain (12 on-demand in all), but the "
                              "forecast peak of ")
    assert "needs 9 (9 short;" in message


def _old_rule_passes(on_demand: int, spot: int, peak: int) -> bool:
    """The rule before a reclaim was planned together with a loss: on-demand + (1 − 1.0) × spot ≥ the peak."""
    return on_demand + 0.0 * spot >= peak


def test_a_reclaim_during_a_zone_or_site_loss_blocks(preview: list[StackResource]) -> None:
    # 7 on-demand on AWS (3, 2, 2 over its three zones) and 3 on Azure (1 in each zone's set): 10
    # on-demand carry the peak of 9 once every spot node is reclaimed, which the rule used to pass. With
    # a zone lost as well, 7 remain (the 3 of AWS's first zone gone); with the AWS failure domain lost, 3.
    def one(props: dict[str, Any]) -> None:
        props["profiles"][0]["capacity"]["maximum"] = "1"

    cut = _edit(preview, ASG, "assistant-70b-aws-use2-spot-nodes", lambda p: _distribution(p).update(onDemandBaseCapacity=7))
    for zone in ("z1", "z2", "z3"):
        cut = _edit(cut, SETTING, f"assistant-70b-azure-westus3-{zone}-autoscale", one)
    assert _old_rule_passes(7 + 3, 21, 9)
    (message,) = [m for m in _findings(cut)[0] if "reclaimed" in m]
    assert "during its worst declared loss (1 zone, 1 failure domain), 3.0 nodes remain (10 on-demand in all)" in message
    assert "needs 9 (6 short;" in message


def test_a_spot_share_above_max_fraction_blocks(preview: list[StackResource]) -> None:
    def grow(props: dict[str, Any]) -> None:  # the spot sets, 1 + 1 + 1, to 30 + 1 + 1
        props["profiles"][0]["capacity"]["maximum"] = "30"

    more = _edit(preview, SETTING, "assistant-70b-azure-westus3-z1-spot-autoscale", grow)
    messages = _findings(more)[0]
    assert any("may run on spot, above the 40% its demand allows" in m for m in messages), messages


def test_spot_added_by_hand_to_a_service_without_spot_blocks(preview: list[StackResource]) -> None:
    def mix(props: dict[str, Any]) -> None:
        props["mixedInstancesPolicy"] = {"instancesDistribution": {"onDemandBaseCapacity": 0,
                                                                   "onDemandPercentageAboveBaseCapacity": 0}}

    mixed = _edit(preview, ASG, "embed-8b-aws-use2-spot-nodes", mix)
    messages = _findings(mixed)[0]
    assert any(m.startswith("embed-8b: 6 of its 6 nodes may run on spot, above the 0%") for m in messages), messages


def test_an_unknown_on_demand_share_fails_closed(preview: list[StackResource]) -> None:
    unread = _edit(preview, ASG, "assistant-70b-aws-use2-spot-nodes",
                   lambda p: _distribution(p).update(onDemandBaseCapacity=UNKNOWN))
    findings, unknown = _findings(unread)
    assert findings == []
    assert unknown == ["assistant-70b: node group assistant-70b-aws-use2-spot-nodes: cannot verify its on-demand capacity "
                       "(its maximum or its spot share) because it is unknown until apply"]


def test_pass_and_fail_through_the_analyzer_protocol(preview: list[StackResource]) -> None:
    cut = _below_the_peak(preview)
    with PolicyEngine(PACK_DIR, stack="spot-inference") as engine:
        ok = engine.run(preview, parse_policy_config({})).diagnostics
        blocked = engine.run(cut, parse_policy_config({})).diagnostics
    assert [d for d in ok if d.policy == NAME] == []
    (violation,) = [d for d in blocked if d.policy == NAME and "reclaimed" in d.message]
    assert violation.enforcement == "mandatory"

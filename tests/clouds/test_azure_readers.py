"""How the policy pack reads Azure training clusters: one InfiniBand island per scale set.

A cluster of several single-placement-group scale sets spans several islands, with Ethernet between
them; `training-fabric-complete` reports it unless the cluster's component carries the run's opt-in
(``pool.allow_multiple_islands`` in the props the component records from the plan).
"""

from __future__ import annotations

import copy

from gpufleet.policy.resources import build_inventory
from gpufleet.policy.rules import check_training_fabric
from tests.policies.policy_baseline import Stack, baseline

CLUSTER = "finetune-8b-azure-eastus"
ISLAND = f"{CLUSTER}-island-0"


def _two_islands() -> Stack:
    stack = baseline()
    second = copy.deepcopy(stack.named(ISLAND))
    second["name"] = f"{CLUSTER}-island-1"
    second["urn"] = second["urn"].replace(ISLAND, second["name"])
    stack.append(second)
    return stack


def _messages(stack: Stack) -> list[str]:
    return [f.message for f in check_training_fabric(build_inventory(stack.policy_resources()), {}).findings]


def test_one_island_passes() -> None:
    assert _messages(baseline()) == []


def test_two_islands_without_the_opt_in_are_a_fabric_violation() -> None:
    (msg,) = _messages(_two_islands())
    assert msg.startswith(f"{CLUSTER}: 4-node Standard_ND96isr_H100_v5 training cluster is missing fabric: ")
    assert (f"it spans 2 InfiniBand islands (scale sets {CLUSTER}-island-0, {CLUSTER}-island-1: 2+2 VMs) and "
            "traffic between islands is Ethernet, but the run does not set allow_multiple_islands: true") in msg


def test_two_islands_with_the_opt_in_pass() -> None:
    stack = _two_islands()
    stack.props(CLUSTER)["pool"] = {"allow_multiple_islands": True}  # as the component records the plan
    assert _messages(stack) == []
    stack.props(CLUSTER)["pool"]["allow_multiple_islands"] = False
    assert len(_messages(stack)) == 1

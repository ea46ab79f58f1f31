"""Kubernetes capacity in the pack: the EKS stack's node groups and KEDA ScaledObjects, read from the
resources its program registers (offline preview, as the engine sends them). The baseline passes;
one change by hand (a node-group maximum, a KEDA maximum, a training node group's EFA interfaces)
blocks, through the rules and through the analyzer protocol.

``stacks/Pulumi.eks-inference.yaml``: ``chat-70b`` needs 16 replicas of 2 H100 (4 p5.48xlarge
nodes); the plan gives it 6 nodes (a zone may fail), which hold 6 × 4 = 24 replicas, KEDA's maximum.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gpufleet.engine import PolicyEngine, StackResource, analyzed_resources, parse_policy_config
from gpufleet.offline import run_program
from gpufleet.policy.config import BY_NAME
from gpufleet.policy.keda import SCALED_OBJECT
from gpufleet.policy.pack import run_rule
from gpufleet.policy.resources import Resource
from gpufleet.policy.rules import RULES, RuleResult
from tests.components.test_eks import k8s
from tests.components.test_eks import run as run_eks
from tests.clouds.builders import make_pool
from tests.policies.policy_baseline import UNKNOWN

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "stacks" / "Pulumi.eks-inference.yaml"
REPLICAS = "replicas-fit-node-pools"
CHAT_NODES = "chat-70b-eks-use1-nodes"
CHAT_SCALER = "chat-70b-eks-use1-scaler"


@pytest.fixture(scope="module")
def eks_stack() -> list[StackResource]:
    return analyzed_resources(run_program(STACK, preview=True))


@pytest.fixture
def stack(eks_stack: list[StackResource]) -> list[StackResource]:
    return copy.deepcopy(eks_stack)


def props(stack: list[StackResource], name: str) -> dict[str, Any]:
    (found,) = [r for r in stack if r.name == name]
    return found.properties


def run(stack: list[StackResource], policy: str, config: dict[str, Any] | None = None) -> RuleResult:
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.properties, parent=r.parent) for r in stack]
    return run_rule(BY_NAME[policy], RULES[policy], resources, config)


def messages(stack: list[StackResource], policy: str) -> list[str]:
    result = run(stack, policy)
    assert not result.unknown, result.unknown
    return [f.message for f in result.findings]


def blocking(engine: PolicyEngine, stack: list[StackResource]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in engine.run(stack, parse_policy_config({})).diagnostics:
        if d.blocking:
            out.setdefault(d.policy, []).append(d.message)
    return out


def test_the_stack_reads_as_node_groups_and_scalers(stack: list[StackResource]) -> None:
    assert [r.properties["spec"]["maxReplicaCount"] for r in stack if r.type == SCALED_OBJECT] == [24, 12]
    assert messages(stack, REPLICAS) == []
    assert messages(stack, "capacity-covers-demand") == []


def test_a_keda_maximum_lowered_below_the_forecast_blocks(stack: list[StackResource]) -> None:
    props(stack, CHAT_SCALER)["spec"]["maxReplicaCount"] = 15
    [msg] = messages(stack, REPLICAS)
    assert msg.startswith("chat-70b: KEDA may run at most 15 replicas, the forecast needs 16 (1 short)")
    assert "3,000 tokens/s per replica; scalers: chat-70b-eks-use1-scaler max 15" in msg
    assert messages(stack, "capacity-covers-demand") == []  # the node groups still hold it


def test_a_keda_maximum_the_node_groups_cannot_hold_blocks(stack: list[StackResource]) -> None:
    props(stack, CHAT_SCALER)["spec"]["maxReplicaCount"] = 25
    [msg] = messages(stack, REPLICAS)
    assert msg == ("chat-70b: KEDA may run 25 replicas in pool chat-70b-eks-use1, its node pools hold 24 at their "
                   "maximum (6 nodes × 4 replicas of 2 GPUs per 8-GPU node): 1 replicas would stay pending")


def test_a_node_group_maximum_lowered_by_hand_blocks_both_links(stack: list[StackResource]) -> None:
    props(stack, CHAT_NODES)["scalingConfig"]["maxSize"] = 3
    [capacity] = messages(stack, "capacity-covers-demand")
    assert capacity.startswith("chat-70b: 3 nodes provisioned at the 90-day horizon, forecast needs 4 (1 node, 8 H100 short)")
    [replicas] = messages(stack, REPLICAS)
    assert "its node pools hold 12 at their maximum (3 nodes × 4 replicas" in replicas


def test_a_scaler_without_a_maximum_is_a_violation(stack: list[StackResource]) -> None:
    del props(stack, CHAT_SCALER)["spec"]["maxReplicaCount"]
    found = messages(stack, REPLICAS)
    assert any("sets no spec.maxReplicaCount" in m for m in found)


def test_an_unknown_keda_maximum_is_reported_not_passed(stack: list[StackResource]) -> None:
    props(stack, CHAT_SCALER)["spec"]["maxReplicaCount"] = UNKNOWN
    result = run(stack, REPLICAS)
    assert result.findings == []
    assert result.unknown == [f"{CHAT_SCALER}: cannot verify spec.maxReplicaCount because it is unknown until apply"]


def test_through_the_analyzer_the_baseline_passes_and_each_cut_blocks(engine: PolicyEngine,
                                                                      stack: list[StackResource]) -> None:
    assert blocking(engine, stack) == {}
    cut_keda = copy.deepcopy(stack)
    props(cut_keda, CHAT_SCALER)["spec"]["maxReplicaCount"] = 12
    assert set(blocking(engine, cut_keda)) == {REPLICAS}
    cut_nodes = copy.deepcopy(stack)
    props(cut_nodes, CHAT_NODES)["scalingConfig"]["maxSize"] = 3
    assert set(blocking(engine, cut_nodes)) >= {"capacity-covers-demand", REPLICAS, "survives-zone-loss"}


def test_a_training_node_group_missing_efa_interfaces_blocks() -> None:
    pool = dataclasses.replace(k8s(make_pool("aws", "training")))
    resources = analyzed_resources(run_eks([pool]))
    assert messages(resources, "training-fabric-complete") == []
    interfaces = props(resources, f"{pool.name}-lt")["networkInterfaces"]
    props(resources, f"{pool.name}-lt")["networkInterfaces"] = interfaces[:9]  # primary + 8 of 32 EFA
    [msg] = messages(resources, "training-fabric-complete")
    assert "attaches 8 of the 32 EFA interfaces a p5.48xlarge has (24 missing)" in msg


def test_a_service_that_scales_to_zero_owes_no_warm_capacity(stack: list[StackResource]) -> None:
    assert messages(stack, "warm-capacity-covers-boot-time") == []  # summarize-8b: 0 nodes by design
    pool = next(r for r in stack if r.name == "summarize-8b-eks-use1")
    pool.properties["pool"]["min_replicas"] = 1  # the same minimum without the declaration is short
    [msg] = messages(stack, "warm-capacity-covers-boot-time")
    assert msg.startswith("summarize-8b: the autoscalers keep 0 nodes running")

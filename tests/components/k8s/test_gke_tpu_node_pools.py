"""TPU slices as GKE TPU slice node pools, built under Pulumi's mocks from ``stacks/Pulumi.gke-tpu.yaml``'s
plan: a multi-host v5p slice is one node pool of its 16 hosts with ``placement_policy.tpu_topology``, no
GPU accelerator or driver; a declared multi-slice run one node pool per slice; flex-start queues each slice
whole; a reservation is consumed by name; single-host v6e serving autoscales between the plan's bounds with
its KEDA ScaledObject. Then the pack, through the rules and through the engine's analyzer protocol: the
built stack passes, a topology cut or removed by hand, a node count cut, or an undeclared slice blocks
``training-fabric-complete``, and a topology unknown until apply is not verified (fail closed)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gpufleet.engine import PolicyEngine, parse_policy_config
from gpufleet.offline import OfflineRun, run_program
from gpufleet.plan import FleetPlan, PoolPlan, build_plan
from gpufleet.policy.resources import build_inventory
from gpufleet.policy.rules import check_capacity_covers_demand, check_training_fabric
from gpufleet.stackfile import load_stack
from tests.components.k8s.k8s_helpers import deploy_k8s
from tests.policies.conftest import started_engine
from tests.policies.policy_baseline import UNKNOWN, Stack

STACK = Path(__file__).resolve().parents[3] / "stacks" / "Pulumi.gke-tpu.yaml"
NODE_POOL = "gcp:container/nodePool:NodePool"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
TRAIN, SERVE = "pretrain-tpu-gke-use5", "chat-tpu-gke-use5"
SLICE = f"{TRAIN}-slice"


@pytest.fixture(scope="module")
def plan() -> FleetPlan:
    name, spec = load_stack(STACK)
    return build_plan(spec, name)


@pytest.fixture(scope="module")
def built() -> OfflineRun:
    run = run_program(STACK)
    assert run.error is None
    return run


def _deploy(pools: list[PoolPlan]) -> OfflineRun:
    """The stack's site (its cluster) and one component per pool, as ``__main__.py`` builds them."""
    _, spec = load_stack(STACK)
    return deploy_k8s("gcp", pools, {}, site=spec.sites[0])


def _training(plan: FleetPlan, **changes: Any) -> list[dict[str, Any]]:
    pool = dataclasses.replace(plan.pool(TRAIN), **changes)
    run = _deploy([pool])
    return [r.inputs for r in sorted(run.of_type(NODE_POOL), key=lambda r: r.name) if r.name != "gke-use5-system"]


def test_a_multi_host_slice_is_one_node_pool_of_its_hosts_with_its_topology(built: OfflineRun) -> None:
    (slice_pool,) = [r for r in built.of_type(NODE_POOL) if r.name == SLICE]
    inputs = slice_pool.inputs
    assert inputs["name"] == TRAIN and inputs["nodeCount"] == 16 and inputs["nodeLocations"] == ["us-east5-a"]
    assert inputs["placementPolicy"] == {"type": "COMPACT", "tpuTopology": "4x4x4"}
    config = inputs["nodeConfig"]
    assert config["machineType"] == "ct5p-hightpu-4t" and "guestAccelerators" not in config
    assert config["taints"] == [{"key": "google.com/tpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert config["labels"]["cloud.google.com/gke-tpu-accelerator"] == "tpu-v5p-slice"
    assert config["labels"]["cloud.google.com/gke-tpu-topology"] == "4x4x4"
    assert "cloud.google.com/gke-tpu-topology" not in config["resourceLabels"]
    assert "autoscaling" not in inputs and "queuedProvisioning" not in inputs


def test_single_host_serving_autoscales_between_the_plans_bounds_with_keda(built: OfflineRun, plan: FleetPlan) -> None:
    pool = plan.pool(SERVE)
    (node_pool,) = [r for r in built.of_type(NODE_POOL) if r.name == f"{SERVE}-nodes"]
    assert node_pool.inputs["autoscaling"] == {"totalMinNodeCount": pool.min_nodes, "totalMaxNodeCount": pool.nodes,
                                               "locationPolicy": "BALANCED"}
    assert node_pool.inputs["nodeConfig"]["machineType"] == "ct6e-standard-8t"
    assert node_pool.inputs["nodeConfig"]["diskType"] == "hyperdisk-balanced"
    assert "placementPolicy" not in node_pool.inputs
    (scaler,) = built.of_type(SCALED_OBJECT)
    spec = scaler.inputs["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (pool.min_replicas, pool.max_replicas)


def test_a_declared_multi_slice_run_gets_one_node_pool_per_slice(plan: FleetPlan) -> None:
    pools = _training(plan, slices=2, nodes=32, gpus=128, nodes_by_zone={"us-east5-a": 32})
    assert [p["name"] for p in pools] == [f"{TRAIN}-s0", f"{TRAIN}-s1"]
    assert {(p["nodeCount"], p["placementPolicy"]["tpuTopology"]) for p in pools} == {(16, "4x4x4")}


def test_flex_start_queues_each_slice_whole_and_a_reservation_is_consumed_by_name(plan: FleetPlan) -> None:
    (queued,) = _training(plan, capacity_type="flex_start")
    assert queued["queuedProvisioning"] == {"enabled": True} and "nodeCount" not in queued
    assert (queued["autoscaling"]["totalMinNodeCount"], queued["autoscaling"]["totalMaxNodeCount"]) == (0, 16)
    assert queued["placementPolicy"]["tpuTopology"] == "4x4x4"  # GKE keeps a TPU slice's COMPACT topology queued
    assert queued["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    (reserved,) = _training(plan, capacity_type="reservation", reservation_id="v5p-res")
    assert reserved["nodeConfig"]["reservationAffinity"]["values"] == ["v5p-res"]


# --- the pack ---------------------------------------------------------------------------------------------


def _stack(run: OfflineRun) -> Stack:
    return Stack({"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent,
                  "properties": copy.deepcopy(r.inputs), "dependencies": list(r.dependencies)} for r in run.resources)


def _fabric(stack: Stack) -> list[str]:
    return [f.message for f in check_training_fabric(build_inventory(stack.policy_resources()), {}).findings]


def test_the_pack_reads_the_slice_as_chips_and_passes_the_built_stack(built: OfflineRun) -> None:
    stack = _stack(built)
    inventory = build_inventory(stack.policy_resources())
    read = inventory.pools[TRAIN]
    assert (read.count, read.instance_type) == (16, "ct5p-hightpu-4t")  # 16 hosts x 4 chips = the 64-chip slice
    assert _fabric(stack) == []
    assert check_capacity_covers_demand(inventory, {}).findings == []


@pytest.mark.parametrize(("change", "words"), [
    ({"placementPolicy": {"type": "COMPACT", "tpuTopology": "4x4x2"}}, "has tpu_topology 4x4x2"),
    ({"placementPolicy": None}, "has no tpu_topology and no COMPACT placement"),
    ({"nodeCount": 12}, "holds 12 node(s), but a 4x4x4 slice has 16 hosts"),
    ({"nodeCount": None, "autoscaling": {"totalMinNodeCount": 4, "totalMaxNodeCount": 16}},
     "may scale to 4 node(s): GKE adds or removes a multi-host slice only whole (0 or 16 nodes)"),
])
def test_a_slice_cut_by_hand_misses_its_fabric(built: OfflineRun, change: dict[str, Any], words: str) -> None:
    stack = _stack(built)
    stack.props(SLICE).update(change)
    (message,) = _fabric(stack)
    assert words in message, message


def test_an_undeclared_second_slice_node_pool_is_refused(built: OfflineRun) -> None:
    stack = _stack(built)
    extra = copy.deepcopy(stack.named(SLICE))
    extra.update(name=f"{SLICE}-extra", urn=extra["urn"] + "-extra")
    stack.append(extra)
    (message,) = _fabric(stack)
    assert "2 TPU slice node pools, but the run declares 1" in message


def test_an_unknown_topology_is_not_verified(built: OfflineRun) -> None:
    stack = _stack(built)
    stack.props(SLICE)["placementPolicy"]["tpuTopology"] = UNKNOWN
    result = check_training_fabric(build_inventory(stack.policy_resources()), {})
    assert result.findings == []
    assert result.unknown == [f"{SLICE}: cannot verify placementPolicy.tpuTopology because it is unknown until apply"]


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> PolicyEngine:
    return started_engine(request, "test")


def _blocked(engine: PolicyEngine, stack: Stack) -> set[str]:
    diags = engine.run(stack.stack_resources(), parse_policy_config({})).diagnostics
    return {d.policy for d in diags if d.enforcement == "mandatory"}


def test_the_analyzer_passes_the_built_slice_and_blocks_a_cut_or_missing_topology(
        engine: PolicyEngine, built: OfflineRun) -> None:
    assert _blocked(engine, _stack(built)) == set()
    for placement in ({"type": "COMPACT", "tpuTopology": "2x4x4"}, None, {"type": "COMPACT", "tpuTopology": UNKNOWN}):
        stack = _stack(built)
        stack.props(SLICE)["placementPolicy"] = placement
        assert "training-fabric-complete" in _blocked(engine, stack), placement

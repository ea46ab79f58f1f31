"""How the pack reads GKE node pools and AKS agent pools: their own bounds (a maximum cut by hand blocks),
the fabric a GKE training node pool attaches (additional node networks, COMPACT placement with a workload
policy or a specific reservation, the DaemonSet installing the NCCL gIB plugin), one AKS agent pool per InfiniBand
island and the Network Operator the run records. Baseline plus one change, through the rules and through
the engine's analyzer protocol."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gpufleet.engine import PolicyEngine, parse_policy_config
from gpufleet.policy.resources import build_inventory
from gpufleet.policy.rules import check_capacity_covers_demand, check_survives_zone_loss, check_training_fabric
from tests.clouds.k8s_baseline import k8s_baseline
from tests.policies.conftest import PACK_DIR
from tests.policies.policy_baseline import UNKNOWN, Stack

GKE_TRAIN = "posttrain-30b-gke-usc1"
AKS_TRAIN = "finetune-8b-aks-eastus"


def _fabric(stack: Stack) -> list[str]:
    return [f.message for f in check_training_fabric(build_inventory(stack.policy_resources()), {}).findings]


def _capacity(stack: Stack) -> list[str]:
    return [f.message for f in check_capacity_covers_demand(build_inventory(stack.policy_resources()), {}).findings]


def test_the_baseline_reads_each_node_pool_bounds() -> None:
    pools = build_inventory(k8s_baseline().policy_resources()).pools
    seen = {name: (p.min_nodes, p.max_nodes, p.count, p.instance_type) for name, p in pools.items()}
    assert seen == {
        "chat-8b-gke-usc1": (3, 12, 3, "g2-standard-48"),
        GKE_TRAIN: (22, 22, 22, "a3-ultragpu-8g"),
        AKS_TRAIN: (2, 2, 2, "Standard_ND96isr_H100_v5"),
        "chat-8b-az-aks-eastus": (3, 12, 3, "Standard_NC40ads_H100_v5"),
    }
    assert _fabric(k8s_baseline()) == [] and _capacity(k8s_baseline()) == []


def test_a_gke_maximum_per_zone_counts_once_per_node_location() -> None:
    stack = k8s_baseline()
    stack.props("chat-8b-gke-usc1-nodes")["autoscaling"] = {"minNodeCount": 1, "maxNodeCount": 4}
    pool = build_inventory(stack.policy_resources()).pools["chat-8b-gke-usc1"]
    assert (pool.min_nodes, pool.max_nodes) == (3, 12)
    assert _capacity(stack) == []


@pytest.mark.parametrize(("resource", "change", "short"), [
    ("chat-8b-gke-usc1-nodes", {"autoscaling": {"totalMinNodeCount": 3, "totalMaxNodeCount": 5}}, "chat-8b"),
    ("chat-8b-gke-usc1-nodes", {"autoscaling": {"minNodeCount": 1, "maxNodeCount": 2}}, "chat-8b"),
    ("chat-8b-az-aks-eastus-nodes", {"maxCount": 4}, "chat-8b-az"),
    (f"{GKE_TRAIN}-nodes", {"nodeCount": 10}, "posttrain-30b"),
    (f"{AKS_TRAIN}-island-0", {"count": 1}, "finetune-8b"),
])
def test_a_node_pool_maximum_lowered_by_hand_blocks(resource: str, change: dict[str, Any], short: str) -> None:
    stack = k8s_baseline()
    stack.props(resource).update(change)
    (msg,) = _capacity(stack)
    assert msg.startswith(f"{short}: ")


def test_an_unknown_node_pool_maximum_is_not_read_as_enough() -> None:
    stack = k8s_baseline()
    stack.props("chat-8b-gke-usc1-nodes")["autoscaling"]["totalMaxNodeCount"] = UNKNOWN
    result = check_capacity_covers_demand(build_inventory(stack.policy_resources()), {})
    assert result.unknown == ["chat-8b-gke-usc1-nodes: cannot verify the node maximum because it is unknown until "
                              "apply"]


def test_an_autoscaled_gke_pool_over_fewer_zones_fails_the_zone_loss() -> None:
    stack = k8s_baseline()
    stack.props("chat-8b-gke-usc1-nodes")["nodeLocations"] = ["us-central1-a", "us-central1-b"]
    findings = check_survives_zone_loss(build_inventory(stack.policy_resources()), {}).findings
    assert [f.message.split(":")[0] for f in findings] == ["chat-8b"]


def test_a_gke_training_pool_short_of_its_additional_networks_misses_its_fabric() -> None:
    stack = k8s_baseline()
    stack.props(f"{GKE_TRAIN}-nodes")["networkConfig"]["additionalNodeNetworkConfigs"] = \
        stack.props(f"{GKE_TRAIN}-nodes")["networkConfig"]["additionalNodeNetworkConfigs"][:5]
    (msg,) = _fabric(stack)
    assert (f"node pool {GKE_TRAIN}-nodes attaches 5 of the 9 additional node networks a a3-ultragpu-8g needs for "
            "its GPU NICs (4 missing)") in msg


def test_gke_managed_accelerator_networks_count_as_attached() -> None:
    stack = k8s_baseline()
    stack.props(f"{GKE_TRAIN}-nodes")["networkConfig"] = {"acceleratorNetworkProfile": "auto"}
    assert _fabric(stack) == []


def test_unknown_additional_networks_are_not_counted_as_attached() -> None:
    stack = k8s_baseline()
    stack.props(f"{GKE_TRAIN}-nodes")["networkConfig"]["additionalNodeNetworkConfigs"] = UNKNOWN
    result = check_training_fabric(build_inventory(stack.policy_resources()), {})
    assert result.findings == []
    assert result.unknown == [f"{GKE_TRAIN}-nodes: cannot verify networkConfig.additionalNodeNetworkConfigs because "
                              "it is unknown until apply"]


def test_gke_placement_comes_from_a_workload_policy_a_reservation_or_queued_provisioning() -> None:
    stack = k8s_baseline()
    stack.props(f"{GKE_TRAIN}-nodes").pop("placementPolicy")
    (msg,) = _fabric(stack)
    assert (f"node pool {GKE_TRAIN}-nodes has no COMPACT placement with a HIGH_THROUGHPUT workload policy and "
            "consumes no specific reservation") in msg
    reserved = Stack(stack.without(f"{GKE_TRAIN}-workload"))
    reserved.props(f"{GKE_TRAIN}-nodes")["nodeConfig"]["reservationAffinity"] = {
        "consumeReservationType": "SPECIFIC_RESERVATION", "key": "compute.googleapis.com/reservation-name",
        "values": ["a3u"]}
    assert _fabric(reserved) == []
    queued = Stack(stack.without(f"{GKE_TRAIN}-workload"))
    queued.props(f"{GKE_TRAIN}-nodes")["queuedProvisioning"] = {"enabled": True}
    assert _fabric(queued) == []


def test_a_compact_policy_naming_no_workload_policy_is_no_placement() -> None:
    stack = k8s_baseline()
    stack.props(f"{GKE_TRAIN}-workload")["workloadPolicy"] = {"type": "HIGH_AVAILABILITY"}
    (msg,) = _fabric(stack)
    assert "has no COMPACT placement with a HIGH_THROUGHPUT workload policy" in msg


def test_a_queued_node_pool_runs_at_its_maximum_once_admitted() -> None:
    stack = k8s_baseline()
    props = stack.props(f"{GKE_TRAIN}-nodes")
    props.pop("nodeCount")
    props.update(queuedProvisioning={"enabled": True}, autoscaling={"totalMinNodeCount": 0, "totalMaxNodeCount": 22})
    pool = build_inventory(stack.policy_resources()).pools[GKE_TRAIN]
    assert (pool.min_nodes, pool.max_nodes, pool.count) == (0, 22, 22)
    props["autoscaling"]["totalMaxNodeCount"] = 12
    (msg,) = _capacity(stack)
    assert msg.startswith("posttrain-30b: 12 nodes provisioned")


def test_rdma_on_gke_needs_the_gib_installer_daemonset() -> None:
    stack = Stack(k8s_baseline().without(f"{GKE_TRAIN}-gib"))
    (msg,) = _fabric(stack)
    assert msg.endswith(f"nothing installs the NCCL gIB plugin on node pool {GKE_TRAIN}-nodes (no DaemonSet running "
                        "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib), so NCCL would not use RDMA")
    other = k8s_baseline()
    other.props(f"{GKE_TRAIN}-gib")["spec"]["template"]["spec"]["initContainers"][0]["image"] = "busybox:1.36"
    assert len(_fabric(other)) == 1


def test_infiniband_on_aks_needs_the_runs_network_operator() -> None:
    stack = k8s_baseline()
    stack.props(AKS_TRAIN)["pool"].pop("fabric_setup_by_workload")
    (msg,) = _fabric(stack)
    assert f"{AKS_TRAIN}: 2-node Standard_ND96isr_H100_v5 training cluster is missing fabric: its InfiniBand is " \
           "not enabled" in msg
    assert "NVIDIA Network Operator" in msg


def test_two_aks_agent_pools_are_two_infiniband_islands() -> None:
    stack = k8s_baseline()
    island = {**stack.named(f"{AKS_TRAIN}-island-0"), "name": f"{AKS_TRAIN}-island-1"}
    island["urn"] = island["urn"].replace("island-0", "island-1")
    island["properties"] = {**island["properties"], "agentPoolName": "finetune8bak1", "count": 1}
    stack.append(island)
    (msg,) = _fabric(stack)
    assert (f"it spans 2 InfiniBand islands (agent pools {AKS_TRAIN}-island-0, {AKS_TRAIN}-island-1: 2+1 VMs)"
            in msg)
    stack.props(AKS_TRAIN)["pool"]["allow_multiple_islands"] = True
    assert _fabric(stack) == []


# --- the same, through the engine's analyzer protocol --------------------------------------------------


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Iterator[PolicyEngine]:
    eng = PolicyEngine(PACK_DIR, stack="test")
    try:
        eng.start()
        yield eng
    finally:
        eng.close()


def _mandatory(engine: PolicyEngine, stack: Stack) -> list[tuple[str, str]]:
    diags = engine.run(stack.stack_resources(), parse_policy_config({})).diagnostics
    return sorted((d.policy, d.message) for d in diags if d.enforcement == "mandatory")


def test_the_analyzer_passes_the_baseline_and_blocks_each_cut_maximum(engine: PolicyEngine) -> None:
    assert _mandatory(engine, k8s_baseline()) == []
    for resource, change in (("chat-8b-gke-usc1-nodes", {"autoscaling": {"totalMinNodeCount": 3,
                                                                         "totalMaxNodeCount": 5}}),
                             ("chat-8b-az-aks-eastus-nodes", {"maxCount": 4})):
        stack = k8s_baseline()
        stack.props(resource).update(change)
        blocked = _mandatory(engine, stack)
        assert "capacity-covers-demand" in {policy for policy, _ in blocked}, blocked

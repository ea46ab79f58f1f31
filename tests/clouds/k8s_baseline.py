"""A compliant GKE + AKS stack, as the engine sends it to ``AnalyzeStack``, for the node pool readers' tests.

Shaped like the baseline of :mod:`tests.policies.policy_baseline` (a component per pool with its demand,
cloud resources under it, a ``SiteNetwork`` per site), with Kubernetes node pools in place of VM groups:

* ``gke-usc1`` (2 MW, PUE 1.1): ``chat-8b`` on a g2-standard-48 node pool over three zones (autoscaling
  3..12 in total; needs 7, 8 survive a zone loss) and ``posttrain-30b`` (22 a3-ultragpu-8g nodes in one
  zone, 9 additional node networks, COMPACT placement with a HIGH_THROUGHPUT workload policy, and the
  DaemonSet installing the NCCL gIB plugin on its nodes);
* ``aks-eastus`` (1 MW, PUE 1.2): ``finetune-8b`` on a 2-node Standard_ND96isr_H100_v5 agent pool in zone 1
  (the run records that the cluster runs the NVIDIA Network Operator) and ``chat-8b-az`` on a
  Standard_NC40ads_H100_v5 agent pool autoscaling 3..12 over three zones.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.policies.policy_baseline import CHAT_8B, FINETUNE_8B, POSTTRAIN_30B, Stack, _Builder, _component, tags

GKE_ZONES = ["us-central1-a", "us-central1-b", "us-central1-c"]
CHAT_8B_AZ = {**CHAT_8B, "workload": "chat-8b-az", "gpu": "H100-NVL", "gpus_per_replica": 1,
              "tokens_per_s_per_replica": 2400}

NODE_POOL = "gcp:container/nodePool:NodePool"
AGENT_POOL = "azure-native:containerservice:AgentPool"


def _pool_facts(props: dict[str, Any], **facts: Any) -> dict[str, Any]:
    """The component's props with a ``pool`` record (what ``components.base.pool_facts`` writes)."""
    props["pool"] = {"name": props["name"], "platform": "kubernetes", **facts}
    return props


def _rdma_networks() -> list[dict[str, str]]:
    """A3 Ultra's additional node networks: the second gVNIC VPC, then the RoCE VPC's 8 subnets."""
    return [{"network": "gke-usc1-gvnic2", "subnetwork": "gke-usc1-gvnic2-subnet"}] + [
        {"network": "gke-usc1-roce-us-central1-a", "subnetwork": f"gke-usc1-roce-us-central1-a-{j}"} for j in range(8)]


def k8s_baseline() -> Stack:
    """The compliant stack (a fresh copy each call)."""
    b = _Builder()
    add = b.add

    add("gpufleet:index:SiteNetwork", "gke-usc1", {
        "site": "gke-usc1", "cloud": "gcp", "region": "us-central1", "zones": GKE_ZONES, "power_mw": 2.0,
        "pue": 1.1, "quota_gpus": {"L4": 64, "H200": 200}})
    chat = add("gpufleet:index:InferencePool", "chat-8b-gke-usc1", _pool_facts(_component(
        "inference", "chat-8b", "gke-usc1", "gcp", "g2-standard-48", "L4", 4, GKE_ZONES, 12, 3, 0.768, 1.1, "none", 0,
        CHAT_8B)))
    add(NODE_POOL, "chat-8b-gke-usc1-nodes", {
        "name": "chat-8b-gke-usc1", "cluster": "projects/unit-project/locations/us-central1/clusters/gke-usc1",
        "nodeLocations": GKE_ZONES,
        "autoscaling": {"totalMinNodeCount": 3, "totalMaxNodeCount": 12, "locationPolicy": "BALANCED"},
        "nodeConfig": {"machineType": "g2-standard-48",
                       "guestAccelerators": [{"type": "nvidia-l4", "count": 4}],
                       "resourceLabels": tags("chat-8b", "inference", "gke-usc1", "L4", 4)}}, chat)

    post = add("gpufleet:index:TrainingCluster", "posttrain-30b-gke-usc1", _pool_facts(_component(
        "training", "posttrain-30b", "gke-usc1", "gcp", "a3-ultragpu-8g", "H200", 8, ["us-central1-a"], 22, 22, 10.2,
        1.1, "rdma", 8, POSTTRAIN_30B)))
    add("gcp:compute/resourcePolicy:ResourcePolicy", "posttrain-30b-gke-usc1-workload", {
        "name": "posttrain-30b-gke-usc1", "region": "us-central1", "workloadPolicy": {"type": "HIGH_THROUGHPUT"}}, post)
    add(NODE_POOL, "posttrain-30b-gke-usc1-nodes", {
        "name": "posttrain-30b-gke-usc1", "cluster": "projects/unit-project/locations/us-central1/clusters/gke-usc1",
        "nodeLocations": ["us-central1-a"], "nodeCount": 22,
        "placementPolicy": {"type": "COMPACT", "policyName": "posttrain-30b-gke-usc1"},
        "networkConfig": {"additionalNodeNetworkConfigs": _rdma_networks()},
        "nodeConfig": {"machineType": "a3-ultragpu-8g",
                       "guestAccelerators": [{"type": "nvidia-h200-141gb", "count": 8}],
                       "resourceLabels": tags("posttrain-30b", "training", "gke-usc1", "H200", 8)}}, post)
    add("kubernetes:apps/v1:DaemonSet", "posttrain-30b-gke-usc1-gib", {
        "metadata": {"name": "nccl-rdma-installer-posttrain-30b-gke-usc1", "namespace": "kube-system"},
        "spec": {"template": {"spec": {
            "initContainers": [{"name": "nccl-rdma-installer",
                                "image": "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib:v1.1.0"}],
            "containers": [{"name": "pause", "image": "gke.gcr.io/pause:3.8"}]}}}}, post)

    add("gpufleet:index:SiteNetwork", "aks-eastus", {
        "site": "aks-eastus", "cloud": "azure", "region": "eastus", "zones": ["1", "2", "3"], "power_mw": 1.0,
        "pue": 1.2, "quota_gpus": {"H100": 64, "H100-NVL": 32}})
    ft = add("gpufleet:index:TrainingCluster", "finetune-8b-aks-eastus", _pool_facts(_component(
        "training", "finetune-8b", "aks-eastus", "azure", "Standard_ND96isr_H100_v5", "H100", 8, ["1"], 2, 2, 10.2,
        1.2, "infiniband", 8, FINETUNE_8B), fabric_setup_by_workload=True))
    add(AGENT_POOL, "finetune-8b-aks-eastus-island-0", {
        "agentPoolName": "finetune8baks", "resourceName": "aks-eastus", "resourceGroupName": "gpufleet-aks-eastus",
        "vmSize": "Standard_ND96isr_H100_v5", "count": 2, "enableAutoScaling": False, "availabilityZones": ["1"],
        "mode": "User", "nodeTaints": ["sku=gpu:NoSchedule"],
        "tags": tags("finetune-8b", "training", "aks-eastus", "H100", 8)}, ft)
    serve = add("gpufleet:index:InferencePool", "chat-8b-az-aks-eastus", _pool_facts(_component(
        "inference", "chat-8b-az", "aks-eastus", "azure", "Standard_NC40ads_H100_v5", "H100-NVL", 1, ["1", "2", "3"],
        12, 3, 0.8, 1.2, "none", 0, CHAT_8B_AZ)))
    add(AGENT_POOL, "chat-8b-az-aks-eastus-nodes", {
        "agentPoolName": "chat8bazaks", "resourceName": "aks-eastus", "resourceGroupName": "gpufleet-aks-eastus",
        "vmSize": "Standard_NC40ads_H100_v5", "count": 3, "enableAutoScaling": True, "minCount": 3, "maxCount": 12,
        "availabilityZones": ["1", "2", "3"], "mode": "User", "nodeTaints": ["sku=gpu:NoSchedule"],
        "tags": tags("chat-8b-az", "inference", "aks-eastus", "H100-NVL", 1)}, serve)
    return Stack(copy.deepcopy(b.stack))

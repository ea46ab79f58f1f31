"""GKE backend under Pulumi's mocks, against the installed SDK's argument classes: a created cluster with
multi-networking where GPU NICs need it, an attached cluster by id, and one node pool per pool (GPUs with
the driver installed by GKE, additional node networks, COMPACT placement with a workload policy or the
reservation's, queued provisioning, the gIB installer DaemonSet, autoscaling bounds in total over the pool's
zones)."""

from __future__ import annotations

from typing import Any

from gpufleet.offline import OfflineRun
from gpufleet.plan import PoolPlan
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.policy.rules import check_training_fabric
from tests.components.k8s.k8s_helpers import deploy_k8s, k8s_pool

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
PARAMS = "kubernetes:networking.gke.io/v1:GKENetworkParamSet"
NETWORK_OBJECT = "kubernetes:networking.gke.io/v1:Network"
POLICY = "gcp:compute/resourcePolicy:ResourcePolicy"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
CREATED = {"kind": "kubernetes", "kubernetes": {"create": True, "version": "1.33",
                                                "system_pool": {"instance_type": "e2-standard-8", "nodes": 3}}}


def _pool(role: str = "training", **overrides: Any) -> PoolPlan:
    return k8s_pool("gcp", role, **overrides)


def _run(pools: list[PoolPlan], platform: dict[str, Any] = CREATED) -> OfflineRun:
    return deploy_k8s("gcp", pools, platform)


def _node_pool(run: OfflineRun, pool: PoolPlan) -> dict[str, Any]:
    (found,) = [r for r in run.of_type(NODE_POOL) if r.name == f"{pool.name}-nodes"]
    return found.inputs


def test_a3_ultra_node_pool_attaches_9_networks_and_the_cluster_knows_them() -> None:
    pool = _pool(nodes=16)
    run = _run([pool])
    (cluster,) = run.of_type(CLUSTER)
    assert cluster.inputs["enableMultiNetworking"] is True and cluster.inputs["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster.inputs["removeDefaultNodePool"] is True and cluster.inputs["minMasterVersion"] == "1.33"
    (nat,) = run.of_type("gcp:compute/routerNat:RouterNat")
    assert nat.inputs["subnetworks"] == [{"name": cluster.inputs["subnetwork"], "sourceIpRangesToNats": ["ALL_IP_RANGES"]}]
    node_pool = _node_pool(run, pool)
    nets = node_pool["networkConfig"]["additionalNodeNetworkConfigs"]
    zone = pool.zones[0]
    assert len(nets) == 9
    assert nets[0] == {"network": "gcp-test-gvnic2", "subnetwork": "gcp-test-gvnic2-subnet"}
    assert {n["network"] for n in nets[1:]} == {f"gcp-test-roce-{zone}"}
    assert [n["subnetwork"] for n in nets[1:]] == [f"gcp-test-roce-{zone}-{j}" for j in range(8)]
    params = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.of_type(PARAMS)}
    assert sorted(params) == ["gvnic-1"] + [f"rdma-{j}" for j in range(8)]
    assert params["gvnic-1"]["deviceMode"] == "NetDevice" and params["rdma-3"] == {
        "vpc": f"gcp-test-roce-{zone}", "vpcSubnet": f"gcp-test-roce-{zone}-3", "deviceMode": "RDMA"}
    assert len(list(run.of_type(NETWORK_OBJECT))) == 9
    # Fixed size in its one zone, GPUs with GKE's driver, the GPU taint, the pool's labels.
    assert node_pool["nodeCount"] == 16 and node_pool["nodeLocations"] == [zone] and "autoscaling" not in node_pool
    config = node_pool["nodeConfig"]
    assert config["guestAccelerators"] == [{"type": "nvidia-h200-141gb", "count": 8,
                                            "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]
    assert config["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert config["resourceLabels"] == pool.tags and config["diskType"] == "hyperdisk-balanced"
    # The DaemonSet putting the NCCL gIB plugin on this node pool's nodes, and only those.
    (gib,) = run.of_type(DAEMONSET)
    assert gib.inputs["metadata"]["namespace"] == "kube-system"
    template = gib.inputs["spec"]["template"]["spec"]
    (installer,) = template["initContainers"]
    assert installer["image"] == "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib:v1.1.0"
    assert installer["securityContext"] == {"privileged": True}
    (term,) = template["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "cloud.google.com/gke-nodepool", "operator": "In",
                                         "values": [node_pool["name"]]}]


def test_a_workload_policy_places_an_on_demand_training_pool() -> None:
    pool = _pool(nodes=8)
    run = _run([pool])
    (policy,) = run.of_type(POLICY)
    assert policy.inputs["workloadPolicy"] == {"type": "HIGH_THROUGHPUT"}
    assert _node_pool(run, pool)["placementPolicy"] == {"type": "COMPACT", "policyName": policy.name}


def test_a_reservation_places_its_nodes_itself() -> None:
    pool = _pool(nodes=8, capacity_type="reservation",
                 reservation_id="projects/res-project/zones/us-central1-b/reservations/a3u")
    run = _run([pool])
    node_pool = _node_pool(run, pool)
    assert list(run.of_type(POLICY)) == [] and "placementPolicy" not in node_pool
    assert node_pool["nodeConfig"]["reservationAffinity"] == {
        "consumeReservationType": "SPECIFIC_RESERVATION", "key": "compute.googleapis.com/reservation-name",
        "values": ["projects/res-project/reservations/a3u"]}


def test_flex_start_is_a_queued_node_pool_from_zero() -> None:
    pool = _pool(nodes=8, capacity_type="flex_start", placement_group=False)
    run = _run([pool])
    node_pool = _node_pool(run, pool)
    assert node_pool["queuedProvisioning"] == {"enabled": True}
    assert node_pool["autoscaling"] == {"totalMinNodeCount": 0, "totalMaxNodeCount": 8, "locationPolicy": "ANY"}
    assert node_pool["management"] == {"autoRepair": False, "autoUpgrade": False}
    assert node_pool["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert node_pool["nodeConfig"]["flexStart"] is True and "placementPolicy" not in node_pool


def test_an_inference_pool_autoscales_in_total_over_its_zones() -> None:
    pool = _pool("inference", nodes=12, min_nodes=3)
    run = _run([pool])
    node_pool = _node_pool(run, pool)
    assert node_pool["autoscaling"] == {"totalMinNodeCount": 3, "totalMaxNodeCount": 12,
                                        "locationPolicy": "BALANCED"}
    assert node_pool["nodeLocations"] == list(pool.zones) and node_pool["initialNodeCount"] == 1
    assert "networkConfig" not in node_pool and list(run.of_type(DAEMONSET)) == []
    (cluster,) = run.of_type(CLUSTER)
    assert "enableMultiNetworking" not in cluster.inputs  # no GPU NICs at this site
    assert list(run.of_type(PARAMS)) == []


def test_an_attached_cluster_is_looked_up_by_its_id_and_not_created() -> None:
    cid = "projects/unit-project/locations/us-central1/clusters/ml"
    pool = _pool("inference")
    run = _run([pool], {"kind": "kubernetes", "kubernetes": {"create": False, "cluster_id": cid}})
    assert list(run.of_type(CLUSTER)) == []
    assert _node_pool(run, pool)["cluster"] == cid and _node_pool(run, pool)["location"] == "us-central1"
    (call,) = [c for c in run.calls if c.token == "gcp:container/getCluster:getCluster"]
    assert call.args == {"name": "ml", "location": "us-central1", "project": "unit-project"}


def test_the_pack_reads_the_built_node_pool_as_complete() -> None:
    pool = _pool(nodes=8)
    run = _run([pool])
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent) for r in run.resources]
    assert check_training_fabric(build_inventory(resources), {}).findings == []

"""AKS backend under Pulumi's mocks, against the installed SDK's argument classes: a created managed cluster
(Azure CNI overlay, the system pool), an attached one by resource id, and one agent pool per pool (one per
InfiniBand island of an ND training cluster): the VM size, zones, GPU taint, AKS-installed driver, fixed
count for training, autoscaler bounds for inference."""

from __future__ import annotations

from typing import Any

from gpufleet.offline import OfflineRun
from gpufleet.plan import PoolPlan
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.policy.rules import check_training_fabric
from tests.components.k8s.k8s_helpers import deploy_k8s, k8s_pool

MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
CREATED = {"kind": "kubernetes", "kubernetes": {"create": True, "system_pool": {"instance_type": "Standard_D8s_v5",
                                                                                "nodes": 3}}}
RID = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ml/providers/"
       "Microsoft.ContainerService/managedClusters/serve")


def _pool(role: str = "training", **overrides: Any) -> PoolPlan:
    return k8s_pool("azure", role, **overrides)


def _run(pools: list[PoolPlan], platform: dict[str, Any] = CREATED) -> OfflineRun:
    return deploy_k8s("azure", pools, platform)


def test_a_created_cluster_uses_cni_overlay_on_the_sites_subnet_with_its_system_pool() -> None:
    run = _run([_pool("inference")])
    (cluster,) = run.of_type(MANAGED_CLUSTER)
    props = cluster.inputs
    assert props["resourceName"] == "gpufleet-azure-test" and props["identity"] == {"type": "SystemAssigned"}
    assert props["networkProfile"] == {"networkPlugin": "azure", "networkPluginMode": "overlay",
                                       "outboundType": "loadBalancer", "podCidr": "192.168.0.0/16",
                                       "serviceCidr": "172.20.0.0/16", "dnsServiceIP": "172.20.0.10"}
    (system,) = props["agentPoolProfiles"]
    assert (system["name"], system["mode"], system["vmSize"], system["count"]) == ("system", "System",
                                                                                   "Standard_D8s_v5", 3)
    assert system["vnetSubnetID"].endswith("/azure-test-nodes")
    # No NAT gateway: the cluster's load balancer carries outbound traffic.
    assert list(run.of_type("azure-native:network:NatGateway")) == []


def test_an_inference_agent_pool_autoscales_between_the_plans_bounds() -> None:
    pool = _pool("inference", nodes=9, min_nodes=3)
    run = _run([pool])
    (agent_pool,) = run.of_type(AGENT_POOL)
    props = agent_pool.inputs
    assert (props["enableAutoScaling"], props["minCount"], props["maxCount"], props["count"]) == (True, 3, 9, 3)
    assert props["vmSize"] == pool.instance_type and props["availabilityZones"] == list(pool.zones)
    assert props["nodeTaints"] == ["sku=gpu:NoSchedule"] and props["gpuProfile"] == {"driver": "Install"}
    assert props["mode"] == "User" and props["tags"] == pool.tags and props["resourceName"] == "gpufleet-azure-test"
    assert len(props["agentPoolName"]) <= 12


def test_an_nd_training_cluster_is_one_fixed_agent_pool_per_infiniband_island() -> None:
    pool = _pool(nodes=150, islands=(75, 75), allow_multiple_islands=True, fabric_setup_by_workload=True)
    run = _run([pool])
    pools = sorted(run.of_type(AGENT_POOL), key=lambda r: r.name)
    assert [r.name for r in pools] == [f"{pool.name}-island-0", f"{pool.name}-island-1"]
    assert [(r.inputs["count"], r.inputs["enableAutoScaling"]) for r in pools] == [(75, False), (75, False)]
    assert all(r.inputs["availabilityZones"] == [pool.zones[0]] for r in pools)
    assert len({r.inputs["agentPoolName"] for r in pools}) == 2
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent) for r in run.resources]
    assert check_training_fabric(build_inventory(resources), {}).findings == []


def test_an_attached_cluster_takes_its_group_and_name_from_the_id() -> None:
    pool = _pool("inference")
    run = _run([pool], {"kind": "kubernetes", "kubernetes": {"create": False, "cluster_id": RID}})
    assert list(run.of_type(MANAGED_CLUSTER)) == []
    (agent_pool,) = run.of_type(AGENT_POOL)
    assert (agent_pool.inputs["resourceGroupName"], agent_pool.inputs["resourceName"]) == ("ml", "serve")
    assert "vnetSubnetID" not in agent_pool.inputs
    (call,) = [c for c in run.calls if c.token == "azure-native:containerservice:listManagedClusterUserCredentials"]
    assert call.args == {"resourceGroupName": "ml", "resourceName": "serve"}

"""EKS under Pulumi's mocks: the cluster (created or attached), one managed node group per pool with
the plan's bounds, EFA and capacity on training node groups, the device plugins, and the KEDA scaler.
The resources are built with the installed SDKs' argument classes, so a wrong argument name fails."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
import pytest

from components import InferencePool, InferencePoolArgs, SiteNetwork, SiteNetworkArgs, TrainingCluster
from components import TrainingClusterArgs, backend_for
from gpufleet import clouds
from gpufleet.catalog import load_catalog
from gpufleet.clouds.aws.kubernetes import EKS_CLUSTER, EKS_NODE_GROUP, architecture, kubeconfig
from gpufleet.offline import OfflineRun, run_function
from gpufleet.plan import PoolPlan
from gpufleet.platforms import ServingSpec
from tests.clouds.builders import make_pool, make_site

SERVING = ServingSpec.model_validate({"prometheus_url": "http://prom.monitoring.svc:9090", "target_value": 4,
                                      "namespace": "llm"})
CREATED = {"kind": "kubernetes", "kubernetes": {"version": "1.33", "system_pool": {"instance_type": "m7g.xlarge"}}}
ATTACHED = {"kind": "kubernetes", "kubernetes": {"create": False, "cluster_name": "prod-gpu",
                                                 "node_role_arn": "arn:aws:iam::123456789012:role/gpu-nodes"}}
HELM = "kubernetes:helm.sh/v3:Release"


def k8s(pool: PoolPlan, cluster: str = "gpufleet-aws-test", **extra: Any) -> PoolPlan:
    replicas = {"min_replicas": 3, "max_replicas": 36} if pool.role == "inference" else {}
    return dataclasses.replace(pool, platform="kubernetes", cluster=cluster, **{**replicas, **extra})


def run(pools: list[PoolPlan], platform: dict[str, Any] = CREATED) -> OfflineRun:
    site = make_site("aws", platform=platform)

    def program() -> None:
        provider = backend_for("aws").provider(site)
        network = SiteNetwork(site.name, SiteNetworkArgs(site=site, pools=tuple(pools)),
                              opts=pulumi.ResourceOptions(providers=[provider]))
        for pool in pools:
            if pool.role == "training":
                TrainingCluster(pool.name, TrainingClusterArgs(pool=pool, network=network))
            else:
                InferencePool(pool.name, InferencePoolArgs(pool=pool, network=network, serving=SERVING))

    return run_function(program, stack="unit")


def node_group(result: OfflineRun, pool: PoolPlan) -> Any:
    return result.named(f"{pool.name}-nodes")


def test_a_created_cluster_has_its_roles_system_pool_endpoints_and_device_plugins() -> None:
    result = run([k8s(make_pool("aws", "training"))])
    (cluster,) = result.of_type(EKS_CLUSTER)
    assert cluster.inputs["name"] == "gpufleet-aws-test" and cluster.inputs["version"] == "1.33"
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    policies = {r.inputs["policyArn"].rsplit("/", 1)[-1] for r in
                result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    assert policies == {"AmazonEKSClusterPolicy", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
                        "AmazonEC2ContainerRegistryReadOnly"}
    system = result.named("aws-test-system")
    assert system.inputs["amiType"] == "AL2023_ARM_64_STANDARD"  # m7g is Graviton
    assert system.inputs["scalingConfig"]["maxSize"] == 2
    services = {r.inputs["serviceName"].rsplit(".", 1)[-1] if "ecr" not in r.inputs["serviceName"]
                else r.inputs["serviceName"].split("us-east-1.")[1] for r in result.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert services == {"ec2", "ecr.api", "ecr.dkr", "sts", "s3"}  # no CloudWatch path on Kubernetes
    charts = {r.inputs["chart"]: r for r in result.of_type(HELM)}
    assert set(charts) == {"nvidia-device-plugin", "aws-efa-k8s-device-plugin"}
    (provider,) = result.of_type("pulumi:providers:kubernetes")
    assert all(r.provider and r.provider.startswith(provider.urn) for r in charts.values())
    config = json.loads(provider.inputs["kubeconfig"])
    assert config["clusters"][0]["cluster"]["server"].startswith("https://")
    assert config["users"][0]["user"]["exec"]["args"][-3:] == ["gpufleet-aws-test", "--region", "us-east-1"]


def test_a_training_node_group_is_fixed_in_one_zone_with_every_efa_interface_and_placement() -> None:
    pool = k8s(make_pool("aws", "training"))
    result = run([pool])
    group = node_group(result, pool)
    assert group.inputs["scalingConfig"] == {"minSize": 4, "maxSize": 4, "desiredSize": 4}
    assert len(group.inputs["subnetIds"]) == 1
    assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA" and group.inputs["capacityType"] == "ON_DEMAND"
    assert "scalingConfig.desiredSize" in group.ignore_changes
    assert group.inputs["labels"]["vpc.amazonaws.com/efa.present"] == "true"
    assert group.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    template = result.named(f"{pool.name}-lt")
    efa = [n for n in template.inputs["networkInterfaces"] if n["interfaceType"] == "efa-only"]
    assert len(efa) == clouds.profile("aws").fabric_interfaces(load_catalog().instance(pool.instance_type)) == 32
    assert "imageId" not in template.inputs and "instanceType" not in template.inputs  # AMI type, node group types
    (pg,) = result.of_type("aws:ec2/placementGroup:PlacementGroup")
    assert pg.inputs["strategy"] == "cluster" and template.inputs["placement"]["groupName"]
    (trainer,) = result.of_type("gpufleet:index:TrainingCluster")
    assert trainer.outputs is not None and trainer.outputs["fabric_interfaces_attached"] == 32
    assert not result.of_type("aws:autoscaling/group:Group")


def test_a_capacity_block_node_group_targets_the_block() -> None:
    pool = k8s(make_pool("aws", "training"), capacity_type="capacity_block", reservation_id="cr-0123456789abcdef0",
               placement_group=False)
    result = run([pool])
    assert node_group(result, pool).inputs["capacityType"] == "CAPACITY_BLOCK"
    template = result.named(f"{pool.name}-lt")
    assert template.inputs["instanceMarketOptions"]["marketType"] == "capacity-block"
    assert template.inputs["capacityReservationSpecification"]["capacityReservationTarget"][
        "capacityReservationId"] == "cr-0123456789abcdef0"
    assert not result.of_type("aws:ec2/placementGroup:PlacementGroup")


def test_an_odcr_node_group_is_on_demand_through_the_reservation() -> None:
    pool = k8s(make_pool("aws", "training"), capacity_type="odcr", reservation_id="cr-0123456789abcdef0")
    result = run([pool])
    assert node_group(result, pool).inputs["capacityType"] == "ON_DEMAND"
    target = result.named(f"{pool.name}-lt").inputs["capacityReservationSpecification"]["capacityReservationTarget"]
    assert target["capacityReservationId"] == "cr-0123456789abcdef0"


def test_an_inference_node_group_spans_its_zones_between_the_plans_bounds() -> None:
    pool = k8s(make_pool("aws", "inference", min_nodes=3, nodes=9))
    result = run([pool])
    group = node_group(result, pool)
    assert (group.inputs["scalingConfig"]["minSize"], group.inputs["scalingConfig"]["maxSize"]) == (3, 9)
    assert len(group.inputs["subnetIds"]) == 3
    assert "vpc.amazonaws.com/efa.present" not in group.inputs["labels"]
    assert {r.inputs["chart"] for r in result.of_type(HELM)} == {"nvidia-device-plugin"}  # no EFA pool
    (scaler,) = result.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert scaler.inputs["spec"]["maxReplicaCount"] == 36


def test_an_existing_cluster_is_looked_up_and_its_node_role_used() -> None:
    pool = k8s(make_pool("aws", "inference"), cluster="prod-gpu")
    result = run([pool], ATTACHED)
    assert not result.of_type(EKS_CLUSTER) and not result.of_type("aws:iam/role:Role")
    group = node_group(result, pool)
    assert group.inputs["clusterName"] == "prod-gpu"
    assert group.inputs["nodeRoleArn"] == "arn:aws:iam::123456789012:role/gpu-nodes"
    tokens = [c.token for c in result.calls]
    assert "aws:eks/getCluster:getCluster" in tokens
    assert tokens.count("aws:ec2/getSubnets:getSubnets") == 3  # the cluster's own subnets, one zone each
    assert [r.name for r in result.of_type(EKS_NODE_GROUP)] == [f"{pool.name}-nodes"]


def test_a_site_attaching_to_an_existing_cluster_builds_no_vpc_and_uses_the_clusters_subnets() -> None:
    trainer = k8s(make_pool("aws", "training"), cluster="prod-gpu")
    server = k8s(make_pool("aws", "inference"), cluster="prod-gpu")
    result = run([trainer, server], ATTACHED)
    assert not result.of_type("aws:ec2/vpc:Vpc") and not result.of_type("aws:ec2/subnet:Subnet")
    assert not result.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    tokens = [c.token for c in result.calls]
    assert tokens.count("aws:eks/getCluster:getCluster") == 1
    lookups = [c for c in result.calls if c.token == "aws:ec2/getSubnets:getSubnets"]
    cluster_subnets = lookups[0].args["filters"][0]["values"]
    assert cluster_subnets and all(s.startswith("subnet-") for s in cluster_subnets)
    network = result.of_type("gpufleet:index:SiteNetwork")[0]
    assert network.outputs is not None
    assert network.outputs["network_id"].startswith("vpc-") and network.outputs["subnet_ids"] == {}
    assert set(network.outputs["cluster_subnet_ids"]) == set(make_site("aws").zones)
    (efa,) = [r for r in result.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name.endswith("-efa")]
    assert efa.inputs["vpcId"] == network.outputs["network_id"]  # the cluster's VPC
    zone_of = {z: ids for z, ids in network.outputs["cluster_subnet_ids"].items()}
    assert node_group(result, trainer).inputs["subnetIds"] == zone_of[trainer.zones[0]]
    assert node_group(result, server).inputs["subnetIds"] == [s for z in server.zones for s in zone_of[z]]


@pytest.mark.parametrize(("instance_type", "arch"), [
    ("m7g.xlarge", "arm64"), ("c8gd.2xlarge", "arm64"), ("g5g.xlarge", "arm64"), ("m6i.xlarge", "x86_64"),
    ("g6e.12xlarge", "x86_64"), ("p5.48xlarge", "x86_64"),
])
def test_architecture_follows_the_instance_family(instance_type: str, arch: str) -> None:
    assert architecture(instance_type) == arch


def test_the_kubeconfig_authenticates_with_aws_eks_get_token() -> None:
    config = json.loads(kubeconfig("c", "https://e", "Q0E=", "eu-west-1"))
    assert config["current-context"] == "c"
    assert config["users"][0]["user"]["exec"]["command"] == "aws"


def test_every_resource_hangs_off_a_component_and_gpu_resources_carry_the_pool_tags() -> None:
    pools = [k8s(make_pool("aws", "training")), k8s(make_pool("aws", "inference"))]
    result = run(pools)
    urns = {r.urn: r for r in result.resources}
    for r in result.resources:
        assert r.parent, r.name
        if not (r.is_component or r.is_provider):
            assert urns[r.parent].is_component, f"{r.name}'s parent is not a component"
    for pool in pools:
        for name in (f"{pool.name}-nodes", f"{pool.name}-lt"):
            tags = result.named(name).inputs["tags"]
            assert {k: tags[k] for k in pool.tags} == pool.tags, name
        assert node_group(result, pool).inputs["labels"]["gpufleet-pool"] == pool.name

"""EKS: the cluster (created with its IAM roles and system node group, or an existing one looked up),
one managed node group per pool, and the NVIDIA and EFA device plugins.

What EKS needs and why (AMI types, launch template rules, EFA, Capacity Blocks, IAM, kubeconfig) is
in :mod:`gpufleet.clouds.aws.kubernetes` with its sources; this module builds it. A training pool's
node group is fixed at ``nodes`` in its one zone's subnet, launching from a template with every EFA
interface of the type, the cluster placement group and the pool's capacity (ODCR target, or a
Capacity Block with capacity type ``CAPACITY_BLOCK``); an inference pool's spans its zones between
``min_nodes`` and ``nodes``. The autoscaler's desired size is never fought (``ignore_changes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws import (efa_interfaces, efa_security_group, interface_endpoint, launch_template,
                            placement_and_capacity, resource_tags)
from components.base import InferencePoolArgs, NetworkBuild, SiteNetworkArgs, TrainingClusterArgs, child, invoke_opts
from components.k8s.base import KubeCluster, KubeClusterArgs, KubernetesBackend, NodePoolBuild, register_k8s
from gpufleet.catalog import InstanceType, load_catalog
from gpufleet.clouds.aws.kubernetes import (
    CAPACITY_TYPE,
    CLUSTER_POLICIES,
    EFA_DEVICE_PLUGIN,
    EFA_LABEL,
    GPU_AMI_TYPE,
    GPU_LABEL,
    GPU_TAINT,
    NODE_ENDPOINT_SERVICES,
    NODE_POLICIES,
    NVIDIA_DEVICE_PLUGIN,
    ROOT_DEVICE,
    S3_SERVICE,
    SYSTEM_AMI_TYPE,
    Chart,
    architecture,
    kubeconfig,
)
from gpufleet.clouds.aws.profile import endpoint_service_name, iam_name_prefix, node_trust_policy, trust_policy
from gpufleet.names import TAG_SITE
from gpufleet.plan import PoolPlan

def _role(owner: Any, name: str, service_trust: str, policies: tuple[str, ...],
          tags: Mapping[str, str]) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    role = aws.iam.Role(name, name_prefix=iam_name_prefix(name), assume_role_policy=service_trust,
                        tags=resource_tags(tags, name), opts=child(owner))
    attached = [aws.iam.RolePolicyAttachment(f"{name}-{arn.rsplit('/', 1)[-1]}", role=role.name, policy_arn=arn,
                                             opts=child(owner)) for arn in policies]
    return role, attached


@register_k8s("aws")
class EksBackend(KubernetesBackend):
    """EKS clusters and managed node groups."""

    def cluster(self, owner: Any, args: KubeClusterArgs) -> KubeCluster:
        site, spec = args.site, args.kubernetes
        name = owner.pulumi_resource_name
        tags = {TAG_SITE: site.name}
        if not spec.create:
            # an attaching site's network is attached_network's: the cluster and its subnets, looked up once
            found, zone_subnets = args.network.handles["eks_cluster"], args.network.cluster_subnet_ids
            authority = found.certificate_authorities.apply(lambda cas: cas[0].data)
            config = pulumi.Output.all(found.endpoint, authority).apply(
                lambda v: kubeconfig(args.name, v[0], v[1], site.region))
            return KubeCluster(name=args.name, id=found.arn, kubeconfig=config, created=False, handles={
                "node_role_arn": spec.node_role_arn, "vpc_id": found.vpc_config.vpc_id,
                "subnet_ids": zone_subnets,
                "cluster_security_group_id": found.vpc_config.cluster_security_group_id})
        subnets = [args.network.subnet_ids[zone] for zone in site.zones]
        _node_endpoints(owner, name, args)
        cluster_role, cluster_policies = _role(owner, f"{name}-eks-cluster", trust_policy("eks.amazonaws.com"),
                                               CLUSTER_POLICIES, tags)
        node_role, node_policies = _role(owner, f"{name}-eks-node", node_trust_policy(), NODE_POLICIES, tags)
        cluster = aws.eks.Cluster(
            f"{name}-eks", name=args.name, role_arn=cluster_role.arn, version=spec.version,
            vpc_config=aws.eks.ClusterVpcConfigArgs(subnet_ids=subnets, endpoint_private_access=True,
                                                    endpoint_public_access=True),
            access_config=aws.eks.ClusterAccessConfigArgs(authentication_mode="API",
                                                          bootstrap_cluster_creator_admin_permissions=True),
            tags=resource_tags(tags, args.name), opts=child(owner, depends_on=cluster_policies))
        system = spec.system_pool
        assert system is not None  # KubernetesSpec requires it when the cluster is created
        arch = architecture(system.instance_type)
        system_group = aws.eks.NodeGroup(
            f"{name}-system", cluster_name=cluster.name, node_role_arn=node_role.arn, subnet_ids=subnets,
            instance_types=[system.instance_type], ami_type=SYSTEM_AMI_TYPE[arch],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=system.nodes, max_size=system.nodes,
                                                              desired_size=system.nodes),
            tags=resource_tags(tags, f"{name}-system"), opts=child(owner, depends_on=node_policies))
        config = pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
            lambda v: kubeconfig(v[0], v[1], v[2], site.region))
        return KubeCluster(name=cluster.name, id=cluster.arn, kubeconfig=config, created=True, handles={
            "node_role_arn": node_role.arn, "depends_on": [system_group, *node_policies],
            "cluster_security_group_id": cluster.vpc_config.cluster_security_group_id})

    def attached_network(self, owner: Any, args: SiteNetworkArgs) -> NetworkBuild:
        """An existing cluster's VPC and its subnets in the site's zones, looked up: no VPC is built.

        A managed node group's subnets must be in the cluster's VPC
        (https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html); a VPC of the site's own
        would be unreachable from the cluster and left unused.
        """
        site = args.site
        kubernetes = site.platform.kubernetes
        assert kubernetes is not None  # called only for a site attaching to a cluster
        found = _lookup(owner, kubernetes.name_at(site.name))
        zone_subnets = {zone: _cluster_subnets(owner, found.vpc_config.subnet_ids, zone) for zone in site.zones}
        return NetworkBuild(network_id=found.vpc_config.vpc_id, subnet_ids={}, handles={"eks_cluster": found},
                            cluster_subnet_ids=zone_subnets)

    def addons(self, owner: Any, args: KubeClusterArgs, cluster: KubeCluster) -> None:
        """The NVIDIA device plugin; the EFA device plugin where a pool has EFA."""
        efa = any(p.fabric == "efa" and p.fabric_enabled and p.role == "training" for p in args.pools)
        name = owner.pulumi_resource_name
        _release(owner, f"{name}-nvidia-device-plugin", NVIDIA_DEVICE_PLUGIN, {}, cluster)
        if efa:
            key, _value, _effect = GPU_TAINT
            _release(owner, f"{name}-efa-device-plugin", EFA_DEVICE_PLUGIN, {
                "nodeSelector": {EFA_LABEL: "true"},
                "tolerations": [{"key": key, "operator": "Exists", "effect": "NoSchedule"}]}, cluster)

    def node_pool(self, owner: Any, args: TrainingClusterArgs | InferencePoolArgs,
                  cluster: KubeCluster) -> NodePoolBuild:
        pool = args.pool
        row = load_catalog().instance(pool.instance_type)
        name = owner.pulumi_resource_name
        cluster_sg = cluster.handles["cluster_security_group_id"]
        extra: dict[str, Any] = {}
        placement_ids: list[pulumi.Input[str]] = []
        attached = 0
        labels = {**pool.tags, GPU_LABEL: "true"}
        if pool.role == "training":
            efa_sg = efa_security_group(owner, f"{name}-efa", cluster.handles.get("vpc_id", args.network.network_id),
                                        pool.tags)
            interfaces = efa_interfaces(row, efa_sg.id, [efa_sg.id, cluster_sg])
            extra, placement_ids, _group = placement_and_capacity(owner, name, pool)
            extra["network_interfaces"] = interfaces
            attached = sum(1 for i in interfaces if i.interface_type == "efa-only")
            if attached:
                labels[EFA_LABEL] = "true"
        template = _launch_template(owner, f"{name}-lt", pool, **extra)
        key, value, effect = GPU_TAINT
        fixed = pool.role == "training"
        group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=cluster.name,
            node_role_arn=cluster.handles["node_role_arn"],
            subnet_ids=_pool_subnets(args, cluster),
            instance_types=[pool.instance_type, *pool.fallback_instance_types],
            ami_type=GPU_AMI_TYPE[_arch(row)],
            capacity_type=CAPACITY_TYPE.get(pool.capacity_type, "ON_DEMAND"),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.nodes if fixed else pool.min_nodes, max_size=pool.nodes,
                desired_size=pool.nodes if fixed else max(pool.min_nodes, 0)),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=template.id,
                                                                version=template.latest_version.apply(str)),
            labels=labels,
            taints=[aws.eks.NodeGroupTaintArgs(key=key, value=value, effect=effect)],
            tags=resource_tags(pool.tags, f"{name}-nodes"),
            opts=child(owner, ignore_changes=["scalingConfig.desiredSize"],
                       depends_on=cluster.handles.get("depends_on", [])),
        )
        return NodePoolBuild(node_pool_ids=[group.arn], placement_ids=placement_ids,
                             fabric_interfaces_attached=attached)


def _node_endpoints(owner: Any, name: str, args: KubeClusterArgs) -> None:
    """The VPC endpoints nodes without internet access need (:data:`NODE_ENDPOINT_SERVICES`, S3)."""
    site, vpc = args.site, args.network.handles["vpc"]
    subnets = [args.network.subnet_ids[zone] for zone in site.zones]
    tags = {TAG_SITE: site.name}
    for service in NODE_ENDPOINT_SERVICES:
        interface_endpoint(owner, f"{name}-{service.replace('.', '-')}", vpc, site, subnets, tags, service,
                           service, "EKS nodes joining the cluster and pulling images")
    aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=vpc.id, vpc_endpoint_type="Gateway",
                        service_name=endpoint_service_name(site.region, S3_SERVICE),
                        route_table_ids=[vpc.main_route_table_id], tags=resource_tags(tags, f"{name}-s3"),
                        opts=child(owner))


def _lookup(owner: Any, name: str) -> pulumi.Output[aws.eks.GetClusterResult]:
    """An existing EKS cluster, read (its endpoint, CA, VPC and subnets)."""
    return aws.eks.get_cluster_output(name=name, opts=invoke_opts(owner))


def _cluster_subnets(owner: Any, subnet_ids: pulumi.Input[list[str]], zone: str) -> pulumi.Output[list[str]]:
    """An existing cluster's subnets in ``zone`` (its node groups must join its own VPC)."""
    found = aws.ec2.get_subnets_output(filters=[
        aws.ec2.GetSubnetsFilterArgs(name="subnet-id", values=subnet_ids),
        aws.ec2.GetSubnetsFilterArgs(name="availability-zone", values=[zone])], opts=invoke_opts(owner))
    return found.ids


def _pool_subnets(args: TrainingClusterArgs | InferencePoolArgs, cluster: KubeCluster) -> pulumi.Input[list[str]]:
    """The pool's zones' subnets: the site network's, or an existing cluster's (a training pool: one zone)."""
    existing = cluster.handles.get("subnet_ids")
    if existing is None:
        return [args.network.subnet_ids[zone] for zone in args.pool.zones]
    return pulumi.Output.all(*(existing[zone] for zone in args.pool.zones)).apply(
        lambda lists: [s for ids in lists for s in ids or []])


def _arch(row: InstanceType) -> str:
    return architecture(row.instance_type)


def _launch_template(owner: Any, name: str, pool: PoolPlan, **extra: Any) -> aws.ec2.LaunchTemplate:
    """A node group's launch template: no image (the node group's AMI type chooses it) and no
    instance type (the node group lists them), its instances and volumes tagged."""
    return launch_template(owner, name, pool, ROOT_DEVICE, ("instance", "volume"), **extra)


def _release(owner: Any, name: str, chart: Chart, values: dict[str, Any], cluster: KubeCluster) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        name, name=chart.name, chart=chart.name, version=chart.version, namespace=chart.namespace,
        create_namespace=True, repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        values=values, skip_await=True,
        opts=pulumi.ResourceOptions(parent=owner, provider=cluster.provider,
                                    depends_on=cluster.handles.get("depends_on", [])))

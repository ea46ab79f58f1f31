"""AKS: the site's managed cluster (created on the site's VNet, or attached by resource id) and one agent
pool per pool (one per InfiniBand island of an ND training cluster), as :mod:`gpufleet.clouds.azure.aks`
describes them.

A created cluster has a system-assigned identity, Azure CNI overlay on the site's node subnet (pods and
services take :data:`~gpufleet.clouds.azure.aks.POD_CIDR` / ``SERVICE_CIDR``, outside the VNet), the OIDC
issuer, and the spec's system pool. An agent pool is a user pool of the pool's VM size in its zones,
with the NVIDIA driver installed by AKS and the ``sku=gpu:NoSchedule`` taint:

* training: ``count`` fixed per island, autoscaling off; a capacity reservation group when the run
  consumes one;
* inference: the cluster autoscaler between ``min_nodes`` and ``nodes`` (``count`` left to it).
"""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import pulumi_azure_native as azure

from components.base import InferencePoolArgs, TrainingClusterArgs, child, invoke_opts
from components.k8s.base import KubeCluster, KubeClusterArgs, KubernetesBackend, NodePoolBuild, register_k8s
from gpufleet.catalog import load_catalog
from gpufleet.clouds.azure import aks
from gpufleet.clouds.azure.profile import resource_group
from gpufleet.names import TAG_SITE


def _decode(kubeconfigs: Any) -> str:
    """The first kubeconfig of an AKS credential list (its value is base64)."""
    first = kubeconfigs[0]
    value = first["value"] if isinstance(first, dict) else first.value
    return base64.b64decode(value).decode()


def _kubeconfig(owner: Any, group: pulumi.Input[str], name: pulumi.Input[str]) -> pulumi.Output[str]:
    creds = azure.containerservice.list_managed_cluster_user_credentials_output(
        resource_group_name=group, resource_name=name, opts=invoke_opts(owner))
    return pulumi.Output.secret(creds.kubeconfigs.apply(_decode))


@register_k8s("azure")
class AksBackend(KubernetesBackend):
    """AKS: a managed cluster with Azure CNI overlay, GPU user agent pools."""

    def cluster(self, owner: Any, args: KubeClusterArgs) -> KubeCluster:
        site, spec = args.site, args.kubernetes
        if not spec.create:
            parts = aks.cluster_parts(str(spec.cluster_id))
            if parts is None:  # the profile's check refuses this before anything is built
                raise ValueError(f"site {site.name}: {spec.cluster_id!r} is not an AKS cluster resource id")
            group, name = parts
            return KubeCluster(name=name, id=str(spec.cluster_id), kubeconfig=_kubeconfig(owner, group, name),
                               created=False, handles={"resource_group": group})
        handles = args.network.handles
        group = handles["resource_group"]
        pool = spec.system_pool
        assert pool is not None  # KubernetesSpec requires it with create: true
        cluster = azure.containerservice.ManagedCluster(
            f"{owner.pulumi_resource_name}-aks",
            resource_name_=args.name,
            resource_group_name=group.name,
            location=site.region,
            dns_prefix=args.name,
            kubernetes_version=spec.version,
            identity=azure.containerservice.ManagedClusterIdentityArgs(type="SystemAssigned"),
            enable_rbac=True,
            oidc_issuer_profile=azure.containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            network_profile=azure.containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin=aks.NETWORK_PLUGIN, network_plugin_mode=aks.NETWORK_PLUGIN_MODE, outbound_type="loadBalancer",
                pod_cidr=aks.POD_CIDR, service_cidr=aks.SERVICE_CIDR, dns_service_ip=aks.DNS_SERVICE_IP),
            agent_pool_profiles=[azure.containerservice.ManagedClusterAgentPoolProfileArgs(
                name=aks.SYSTEM_POOL_NAME, mode="System", vm_size=pool.instance_type, count=pool.nodes,
                availability_zones=list(site.zones), os_type="Linux", os_sku="Ubuntu",
                type="VirtualMachineScaleSets", vnet_subnet_id=handles["subnet"].id)],
            tags={TAG_SITE: site.name},
            # GPU pools are AgentPool resources of their own; the cluster's list keeps the system pool only.
            opts=child(owner, ignore_changes=["agentPoolProfiles"]),
        )
        return KubeCluster(name=cluster.name, id=cluster.id, kubeconfig=_kubeconfig(owner, group.name, cluster.name),
                           created=True, handles={"resource_group": group.name, "cluster": cluster,
                                                  "subnet_id": handles["subnet"].id})

    def node_pool(self, owner: Any, args: TrainingClusterArgs | InferencePoolArgs,
                  cluster: KubeCluster) -> NodePoolBuild:
        pool = args.pool
        row = load_catalog().instance(pool.instance_type)
        name = owner.pulumi_resource_name
        training = pool.role == "training"
        islands = list(pool.islands) if training and aks.agent_pools(pool) > 1 else [pool.nodes]
        depends = [cluster.handles["cluster"]] if "cluster" in cluster.handles else []
        ids: list[pulumi.Input[str]] = []
        for i, nodes in enumerate(islands):
            suffix = f"island-{i}" if training and row.fabric == "infiniband" else "nodes"
            scaling: dict[str, Any] = (
                {"count": nodes, "enable_auto_scaling": False} if training else
                {"count": pool.min_nodes, "enable_auto_scaling": True, "min_count": pool.min_nodes,
                 "max_count": pool.nodes})
            agent_pool = azure.containerservice.AgentPool(
                f"{name}-{suffix}",
                agent_pool_name=aks.agent_pool_name(pool.name, i, len(islands)),
                resource_group_name=cluster.handles["resource_group"],
                resource_name_=cluster.name,
                vm_size=row.instance_type,
                availability_zones=list(pool.zones),
                mode="User",
                os_type="Linux",
                os_sku="Ubuntu",
                gpu_profile=azure.containerservice.GPUProfileArgs(driver="Install"),
                node_taints=[aks.GPU_TAINT],
                node_labels=dict(sorted(pool.tags.items())),
                tags=dict(sorted(pool.tags.items())),
                vnet_subnet_id=cluster.handles.get("subnet_id"),
                capacity_reservation_group_id=pool.reservation_id if pool.capacity_type == "reservation" else None,
                opts=child(owner, depends_on=depends, ignore_changes=[] if training else ["count"]),
                **scaling,
            )
            ids.append(agent_pool.id)
        notes = []
        if training and row.fabric == "infiniband":
            notes.append(f"InfiniBand between pods needs the {aks.INFINIBAND_FEATURE} feature on the subscription and "
                         "the NVIDIA Network Operator in the cluster, which the run says it has "
                         "(fabric_setup_by_workload)")
        return NodePoolBuild(node_pool_ids=ids, fabric_interfaces_attached=row.fabric_interfaces
                             if training and row.fabric == "infiniband" else 0, notes=notes)

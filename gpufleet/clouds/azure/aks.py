"""AKS as gpufleet knows it: agent pool shapes and names, cluster limits, InfiniBand on ND node pools.

Pure: no Pulumi, no SDK. The AKS backend (``components/k8s/aks.py``) builds what this module describes,
the Azure reader reads it back, and :class:`~gpufleet.clouds.azure.profile.AzureProfile` runs the named
checks here before anything is built. Sources (read 2026-11):

* Agent pools: ``count`` / ``maxCount`` 0–1,000 for user pools; Linux pool names 1–12 lowercase letters
  and digits, from a letter: https://learn.microsoft.com/azure/aks/create-node-pools. A cluster holds at
  most 100 node pools and 5,000 nodes: https://learn.microsoft.com/azure/aks/quotas-skus-regions.
* GPU node pools: AKS installs the NVIDIA driver unless ``gpuProfile.driver: None``; GPU nodes carry the
  ``sku=gpu:NoSchedule`` taint so only GPU workloads land there:
  https://learn.microsoft.com/azure/aks/use-nvidia-gpu.
* InfiniBand: the nodes of one node pool land on one InfiniBand network once the subscription registers
  the ``Microsoft.ContainerService/AKSInfinibandSupport`` feature, and RDMA reaches pods through the
  NVIDIA Network Operator (MOFED driver, ``NicClusterPolicy``, an RDMA device plugin), plus
  ``nvidia-peermem`` for GPUDirect RDMA with AKS-managed drivers: github.com/Azure/aks-rdma-infiniband
  (``website/docs/getting-started/02-prerequisites.md``, ``configurations/01-network-operator.md``,
  ``02-gpu-drivers.md``). A node pool is one scale set; InfiniBand stops at its placement group, so a
  cluster larger than one island is one node pool per island, as on VMs
  (:meth:`~gpufleet.clouds.azure.profile.AzureProfile.islands`). gpufleet installs none of that
  software (:func:`infiniband_software_gap`).
* A cluster id is ``/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ContainerService/
  managedClusters/<name>`` (what ``az aks show --query id`` prints); its agent pools are created with that
  group and name.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gpufleet.clouds.base import PoolCheck, SiteCheck
from gpufleet.errors import Issue

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType
    from gpufleet.plan import PoolPlan
    from gpufleet.spec import SiteSpec

# --- resource type tokens ----------------------------------------------------------------------------

MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"

# --- facts -------------------------------------------------------------------------------------------

KUBERNETES = "kubernetes"
"""``PoolPlan.platform`` / ``PlatformSpec.kind`` of a pool that runs on a Kubernetes node pool."""

AGENT_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
AGENT_POOL_MAX_NODES = 1000
CLUSTER_MAX_POOLS = 100
CLUSTER_MAX_NODES = 5000
GPU_TAINT = "sku=gpu:NoSchedule"
SYSTEM_POOL_NAME = "system"
INFINIBAND_FEATURE = "Microsoft.ContainerService/AKSInfinibandSupport"
NETWORK_PLUGIN = "azure"
NETWORK_PLUGIN_MODE = "overlay"
"""Azure CNI overlay: pods take addresses outside the VNet, so the node subnet holds only nodes
(https://learn.microsoft.com/azure/aks/azure-cni-overlay)."""
POD_CIDR = "192.168.0.0/16"
SERVICE_CIDR = "172.20.0.0/16"
DNS_SERVICE_IP = "172.20.0.10"
"""A created cluster's pod and service ranges: neither may overlap the cluster's VNet (same page), nor
may they use 169.254.0.0/16, 172.30.0.0/16, 172.31.0.0/16 or 192.0.2.0/24
(https://learn.microsoft.com/azure/aks/configure-azure-cni); the DNS service address sits in the
service range. AKS's own defaults (10.244.0.0/16, 10.0.0.0/16) would overlap gpufleet's default
site range 10.0.0.0/16, and 172.16.0.0/16 is the InfiniBand network's."""

CLUSTER_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[0-9a-fA-F-]{36})/resourceGroups/(?P<group>[-\w.()]{1,90})"
    r"/providers/Microsoft\.ContainerService/managedClusters/(?P<name>[a-zA-Z0-9][-_a-zA-Z0-9]{0,62})$",
    re.IGNORECASE)


def agent_pool_name(pool_name: str, island: int = 0, islands: int = 1) -> str:
    """The agent pool name of a pool (or of its ``island``-th island): at most 12 lowercase letters and
    digits, from a letter; the pool name's letters and digits, with a digest where it does not fit."""
    stem = re.sub(r"[^a-z0-9]", "", pool_name.lower())
    stem = stem if stem[:1].isalpha() else f"p{stem}"
    wanted = stem if islands == 1 else f"{stem}{island}"
    if AGENT_POOL_NAME.fullmatch(wanted):
        return wanted
    digest = hashlib.sha256(f"{pool_name}/{island}".encode()).hexdigest()[:5]
    return f"{stem[:7]}{digest}"


def cluster_parts(cluster_id: str) -> tuple[str, str] | None:
    """(resource group, cluster name) of an AKS cluster id, or None when it is not one."""
    match = CLUSTER_ID.fullmatch(cluster_id)
    return (match["group"], match["name"]) if match else None


def on_kubernetes(pool: PoolPlan) -> bool:
    return pool.platform == KUBERNETES


def agent_pools(pool: PoolPlan) -> int:
    """Agent pools a pool needs: one per InfiniBand island of a training cluster, else one."""
    return len(pool.islands) if pool.role == "training" and pool.fabric == "infiniband" and pool.islands else 1


def infiniband_software_gap(row: InstanceType) -> str | None:
    """What an AKS node pool of an InfiniBand size lacks for RDMA between pods (None without InfiniBand)."""
    if row.fabric != "infiniband":
        return None
    return (f"AKS puts the nodes of a {row.instance_type} node pool on one InfiniBand network (with the "
            f"{INFINIBAND_FEATURE} feature registered), but RDMA reaches pods only through the NVIDIA Network "
            "Operator (MOFED, a NicClusterPolicy, an RDMA device plugin) and nvidia-peermem, none of which "
            "gpufleet installs")


# --- named checks ------------------------------------------------------------------------------------


def check_site_aks_cluster_id(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """An existing AKS cluster is named by its resource id, in the site's subscription when it names one."""
    k8s = site.platform.kubernetes
    if k8s is None or k8s.create:
        return []
    field = f"{loc}.platform.kubernetes.cluster_id"
    hint = ("/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ContainerService/managedClusters/<name> "
            "(`az aks show -g <group> -n <name> --query id`)")
    if not k8s.cluster_id:
        return []  # gpufleet.platforms.check_platforms asks for it
    match = CLUSTER_ID.fullmatch(k8s.cluster_id)
    if match is None:
        return [Issue(field, f"{k8s.cluster_id!r} is not an AKS cluster resource id", hint)]
    if site.subscription_id and match["subscription"].lower() != site.subscription_id.lower():
        return [Issue(field, f"cluster {match['name']} is in subscription {match['subscription']}, the site in "
                      f"{site.subscription_id}", "the site's subscription, or a site for that subscription")]
    return []


CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,52}[a-zA-Z0-9])?$")
"""A created cluster's name, which is also its DNS prefix: 1–54 letters, digits and hyphens, starting and
ending with a letter or digit (https://learn.microsoft.com/azure/azure-resource-manager/management/
resource-name-rules, managedClusters: 1–63; the DNS prefix: 1–54, no underscores)."""


def check_site_aks_cluster_name(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """A created AKS cluster's name (``cluster_name``, default ``gpufleet-<site>``) can also be its DNS prefix."""
    k8s = site.platform.kubernetes
    if k8s is None or not k8s.create:
        return []
    name = k8s.name_at(site.name)
    if CLUSTER_NAME.fullmatch(name):
        return []
    return [Issue(f"{loc}.platform.kubernetes.cluster_name", f"{name!r} cannot name an AKS cluster and its DNS "
                  f"prefix (pattern {CLUSTER_NAME.pattern})", "1–54 letters, digits and hyphens, starting and ending "
                  "with a letter or digit; set cluster_name when the site's name makes the default too long")]


def check_site_aks_cluster_limits(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """The site's AKS cluster holds its node pools: at most :data:`CLUSTER_MAX_POOLS` node pools (the
    system pool of a created cluster included) and :data:`CLUSTER_MAX_NODES` nodes."""
    k8s = site.platform.kubernetes
    mine = [p for p in pools if on_kubernetes(p)]
    if k8s is None or not mine:
        return []
    system = k8s.system_pool.nodes if k8s.create and k8s.system_pool is not None else 0
    count = sum(agent_pools(p) for p in mine) + (1 if k8s.create else 0)
    nodes = sum(p.nodes for p in mine) + system
    issues = []
    if count > CLUSTER_MAX_POOLS:
        issues.append(Issue(f"{loc}.platform", f"the site's AKS cluster would hold {count} node pools; AKS allows "
                            f"{CLUSTER_MAX_POOLS}", "spread the workloads over more sites (clusters)"))
    if nodes > CLUSTER_MAX_NODES:
        issues.append(Issue(f"{loc}.platform", f"the site's AKS cluster would run {nodes} nodes at full size; AKS "
                            f"allows {CLUSTER_MAX_NODES}", "spread the workloads over more sites (clusters)"))
    return issues


def check_site_aks_cluster_ranges(site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
    """A created AKS cluster's pod and service ranges (:data:`POD_CIDR`, :data:`SERVICE_CIDR`) stay clear
    of the site's VNet."""
    k8s = site.platform.kubernetes
    if k8s is None or not k8s.create:
        return []
    net = ipaddress.ip_network(site.network_cidr)
    clash = [cidr for cidr in (POD_CIDR, SERVICE_CIDR) if net.overlaps(ipaddress.ip_network(cidr))]
    if not clash:
        return []
    return [Issue(f"{loc}.network_cidr", f"VNet range {site.network_cidr} overlaps {', '.join(clash)}, the pod / "
                  "service range gpufleet gives a created AKS cluster (they must not overlap the cluster's VNet)",
                  "a range outside 192.168.0.0/16 and 172.20.0.0/16, e.g. 10.20.0.0/16")]


def check_pool_aks_infiniband(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A multi-node InfiniBand training node pool on AKS has its RDMA software from somewhere: gpufleet
    installs none (:func:`infiniband_software_gap`), so the run says the cluster has it
    (``fabric_setup_by_workload``)."""
    gap = infiniband_software_gap(row)
    if not on_kubernetes(pool) or pool.role != "training" or pool.nodes < 2 or gap is None \
            or pool.fabric_setup_by_workload:
        return []
    return [Issue(f"{loc}.fabric_setup_by_workload",
                  f"{pool.nodes}-node {row.instance_type} node pool {pool.name} would have no InfiniBand between its "
                  f"pods: {gap}",
                  "fabric_setup_by_workload: true once the cluster runs the NVIDIA Network Operator and the "
                  f"subscription has {INFINIBAND_FEATURE} (docs/kubernetes.md lists what an AKS cluster must run); "
                  "or a single node")]


SITE_CHECKS: tuple[SiteCheck, ...] = (check_site_aks_cluster_id, check_site_aks_cluster_name, check_site_aks_cluster_limits,
                                      check_site_aks_cluster_ranges)
POOL_CHECKS: tuple[PoolCheck, ...] = (check_pool_aks_infiniband,)
"""The AKS checks the Azure profile runs after its own (each returns nothing for pools on VMs)."""

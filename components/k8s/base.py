"""The Kubernetes seam: one :class:`KubernetesBackend` per cloud, its registry, and the facades' path.

A site whose ``platform.kind`` is ``kubernetes`` runs its pools as node pools of one managed cluster
(EKS, GKE, AKS). Its :class:`~components.network.SiteNetwork` builds the network as on VMs, then asks
the cloud's Kubernetes backend for the cluster (:meth:`KubernetesBackend.cluster`: created, or the
existing one looked up), builds a Kubernetes provider from the cluster's kubeconfig
(:func:`components.k8s.keda.kubernetes_provider`) and lets the backend install what the nodes need
in the cluster (:meth:`KubernetesBackend.addons`, e.g. device plugins). The facades
:class:`~components.cluster.TrainingCluster` and :class:`~components.cluster.InferencePool` then call
:func:`build_training` / :func:`build_inference` here instead of the VM backend: one node pool per
pool (:meth:`KubernetesBackend.node_pool`), and for a service the KEDA ``ScaledObject`` that scales
its Deployment (:func:`components.k8s.keda.scaled_object`, the same on every cloud).

A backend registers with :func:`register_k8s`::

    @register_k8s("mycloud")
    class MyCloudKubernetes(KubernetesBackend):
        ...

Invariants (as for the VM backends, :mod:`components.base`): counts, bounds, zones and types come
from the :class:`~gpufleet.plan.PoolPlan` (``nodes`` is the node pool's maximum, ``min_nodes`` its
minimum; a backend never sizes); every child has ``parent=<the facade>``; every GPU node pool carries
``PoolPlan.tags`` (as labels or tags, as the cloud allows); the autoscaler's current size is left to it
(``ignore_changes``). ``pulumi_kubernetes`` is imported only where an in-cluster object is built, so
a stack without Kubernetes sites runs without it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pulumi

from components.base import ClusterBuild, InferencePoolArgs, NetworkBuild, PoolBuild, SiteNetworkArgs
from components.base import TrainingClusterArgs, lazy_lookup, load_all, register_in
from gpufleet.clouds.base import CloudProfile
from gpufleet.platforms import KubernetesSpec
from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec

if TYPE_CHECKING:
    from components.network import SiteNetwork


@dataclass(frozen=True)
class KubeClusterArgs:
    """What a backend needs to create (or find) a site's cluster."""

    site: SiteSpec
    """The site: cloud, region, zones, project / resource group."""
    kubernetes: KubernetesSpec
    """The site's ``platform.kubernetes``: create or attach, version, system pool, identifiers."""
    name: str
    """The cluster's name (the plan's ``PoolPlan.cluster``)."""
    network: NetworkBuild
    """What the site's network backend built: the VPC / VNet, subnet per zone, cloud handles."""
    pools: tuple[PoolPlan, ...] = ()
    """The pools that will join the cluster (e.g. the fabric networks a GKE cluster must know)."""


@dataclass
class KubeCluster:
    """A site's cluster, as its node pools and in-cluster objects need it.

    Attributes:
        name: the cluster name node pools join.
        id: the cluster's resource id (ARN, ``projects/.../clusters/...``, ARM id).
        kubeconfig: a kubeconfig reaching the API server (a Kubernetes provider is built from it).
        created: True when the stack creates the cluster (False: attached).
        handles: cloud-specific objects the same cloud's :meth:`KubernetesBackend.node_pool` reads
            (e.g. the EKS node role, the cluster resource to depend on).
        provider: the Kubernetes provider built from ``kubeconfig`` (set by :func:`build_cluster`).
    """

    name: pulumi.Input[str]
    id: pulumi.Input[str]
    kubeconfig: pulumi.Input[str]
    created: bool
    handles: dict[str, Any] = field(default_factory=dict)
    provider: Any = None


@dataclass
class NodePoolBuild:
    """What a backend built for one pool.

    Attributes:
        node_pool_ids: the node pools (EKS node group ARNs, GKE node pool ids, AKS agent pool ids).
        placement_ids: placement groups / compact placement policies / proximity placement groups.
        fabric_interfaces_attached: fabric NICs per node the node pool really attaches (0 without).
        notes: choices a reader should know about.
    """

    node_pool_ids: list[pulumi.Input[str]]
    placement_ids: list[pulumi.Input[str]] = field(default_factory=list)
    fabric_interfaces_attached: int = 0
    notes: list[str] = field(default_factory=list)


class KubernetesBackend(ABC):
    """One cloud's managed Kubernetes: the cluster and its node pools. Stateless."""

    name: ClassVar[str] = ""
    """The cloud name as the spec writes it (set by :func:`register_k8s`)."""
    profile: ClassVar[CloudProfile]
    """The cloud's profile (set by :func:`register_k8s`)."""

    @abstractmethod
    def cluster(self, owner: SiteNetwork, args: KubeClusterArgs) -> KubeCluster:
        """Create the site's cluster (``args.kubernetes.create``) with its system pool and IAM, or
        look up the existing one, as children of ``owner``."""

    @abstractmethod
    def node_pool(self, owner: pulumi.ComponentResource, args: TrainingClusterArgs | InferencePoolArgs,
                  cluster: KubeCluster) -> NodePoolBuild:
        """One node pool for ``args.pool`` joining ``cluster``, as children of ``owner``: bounds
        ``min_nodes``..``nodes`` (training: fixed at ``nodes``), its zones, the fabric of a training
        pool and its capacity type."""

    def attached_network(self, owner: SiteNetwork, args: SiteNetworkArgs) -> NetworkBuild | None:
        """The network of a site attaching to an existing cluster whose node pools must use the
        cluster's own network (looked up, nothing built), or None: the site's network is built as
        on VMs. Called only with ``platform.kubernetes.create: false``. Default: None."""
        return None

    def addons(self, owner: SiteNetwork, args: KubeClusterArgs, cluster: KubeCluster) -> None:
        """In-cluster software GPU nodes need that the service does not install itself (device
        plugins), through ``cluster.provider``. Default: none."""


# --- registry --------------------------------------------------------------------------------------

_REGISTRY: dict[str, KubernetesBackend] = {}

K = TypeVar("K", bound=type[KubernetesBackend])


def register_k8s(name: str) -> Callable[[K], K]:
    """Class decorator: register a :class:`KubernetesBackend` under a cloud name (see
    :func:`components.base.register_in`)."""

    def decorate(cls: K) -> K:
        register_in(_REGISTRY, name, cls, "Kubernetes backend")
        return cls

    return decorate


def k8s_backend_for(cloud: str) -> KubernetesBackend:
    """The Kubernetes backend registered for a cloud (its module imported on first use).

    Raises:
        KeyError: none for that cloud (the message lists the registered ones).
    """
    return lazy_lookup(_REGISTRY, cloud, _backend_modules(), "Kubernetes backend")


def k8s_registered() -> tuple[str, ...]:
    """Cloud names with a Kubernetes backend, sorted (every backend module loaded first)."""
    return load_all(_REGISTRY, _backend_modules())


def _backend_modules() -> dict[str, str]:
    """Each cloud's Kubernetes backend module (:data:`components.k8s.BACKEND_MODULES`)."""
    from components.k8s import BACKEND_MODULES

    return {cloud: f"components.k8s.{module}" for cloud, module in BACKEND_MODULES.items()}


# --- what the facades call -------------------------------------------------------------------------


def attached_network(owner: SiteNetwork, args: SiteNetworkArgs) -> NetworkBuild | None:
    """An attaching site's network as its cloud's Kubernetes backend looks it up (None: build one)."""
    kubernetes = args.site.platform.kubernetes
    if kubernetes is None or kubernetes.create:
        return None
    return k8s_backend_for(args.site.cloud).attached_network(owner, args)


def build_cluster(owner: SiteNetwork, args: KubeClusterArgs) -> KubeCluster:
    """The site's cluster, its Kubernetes provider and its add-ons (called by the SiteNetwork)."""
    from components.k8s.keda import kubernetes_provider

    backend = k8s_backend_for(args.site.cloud)
    cluster = backend.cluster(owner, args)
    cluster.provider = kubernetes_provider(owner, f"{owner.pulumi_resource_name}-k8s", cluster.kubeconfig)
    backend.addons(owner, args, cluster)
    return cluster


def _cluster_of(args: TrainingClusterArgs | InferencePoolArgs) -> KubeCluster:
    cluster = getattr(args.network, "cluster", None)
    if not isinstance(cluster, KubeCluster):
        raise ValueError(f"pool {args.pool.name} runs on Kubernetes but site {args.pool.site}'s network "
                         "built no cluster (its platform.kind is not kubernetes)")
    return cluster


def build_training(owner: pulumi.ComponentResource, args: TrainingClusterArgs) -> ClusterBuild:
    """A training pool as a fixed-size node pool of the site's cluster."""
    cluster = _cluster_of(args)
    build = k8s_backend_for(args.pool.cloud).node_pool(owner, args, cluster)
    return ClusterBuild(node_group_ids=build.node_pool_ids, placement_ids=build.placement_ids,
                        fabric_interfaces_attached=build.fabric_interfaces_attached)


def build_inference(owner: pulumi.ComponentResource, args: InferencePoolArgs) -> PoolBuild:
    """An inference pool as an autoscaled node pool plus the KEDA ``ScaledObject`` of its Deployment."""
    from components.k8s.keda import scaled_object

    cluster = _cluster_of(args)
    build = k8s_backend_for(args.pool.cloud).node_pool(owner, args, cluster)
    if args.serving is None:
        raise ValueError(f"inference pool {args.pool.name} runs on Kubernetes and has no serving spec")
    scaler = scaled_object(owner, args.pool, args.serving, cluster)
    return PoolBuild(node_group_id=build.node_pool_ids[0], autoscaler_id=scaler.id, warm_nodes=0,
                     notes=build.notes)

"""The seam between the facades and the clouds: Args, the per-cloud backend contract, and its registry.

Three facades (:class:`~components.network.SiteNetwork`, :class:`~components.cluster.TrainingCluster`,
:class:`~components.cluster.InferencePool`) are what the program builds. Each one looks up the
:class:`CloudBackend` registered for its pool's cloud and lets it create the child resources. A
backend registers itself with :func:`register`::

    @register("mycloud")
    class MyCloudBackend(CloudBackend):
        ...

The name must be one :mod:`gpufleet.clouds` knows; the backend gets that cloud's profile. Nothing
outside a backend module (and this registry) knows a cloud's name. A backend lives in
``components/<cloud>.py`` and is imported the first time :func:`backend_for` asks for its cloud, so
a stack loads only the provider SDKs of the clouds it uses.

Invariants every backend keeps:

* counts, zones, instance types and islands come from the :class:`~gpufleet.plan.PoolPlan`; a
  backend never sizes anything;
* every child has ``parent=<the facade>`` and inherits the site's explicit provider from it;
* every GPU-bearing resource carries ``PoolPlan.tags``;
* inputs are deterministic: names derive from the pool name, iteration is sorted;
* what the cloud offers and refuses comes from its :class:`~gpufleet.clouds.base.CloudProfile`
  (:attr:`CloudBackend.profile`); :mod:`gpufleet.checks` refuses a bad plan before any resource
  is registered, so a backend never second-guesses one.
"""

from __future__ import annotations

import importlib
import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

import pulumi

from gpufleet import clouds
from gpufleet.clouds.base import CloudProfile
from gpufleet.catalog import InstanceType, load_catalog
from gpufleet.plan import PoolPlan
from gpufleet.platforms import ServingSpec
from gpufleet.spec import SiteSpec

if TYPE_CHECKING:
    from components.cluster import InferencePool, TrainingCluster
    from components.network import SiteNetwork



# --- Args ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteNetworkArgs:
    """Inputs of a :class:`~components.network.SiteNetwork`."""

    site: SiteSpec
    """The site (cloud, region, zones, address space, project / resource group)."""
    pools: tuple[PoolPlan, ...] = ()
    """The pools this network serves; a backend reads their zones and machine families to create the
    extra fabric networks they need (GCP GPU / RoCE VPCs)."""


@dataclass(frozen=True)
class TrainingClusterArgs:
    """Inputs of a :class:`~components.cluster.TrainingCluster`."""

    pool: PoolPlan
    """A training pool of the plan: instance type, node count, its one zone, islands, capacity."""
    network: SiteNetwork
    """The network of the pool's site."""
    demand: Mapping[str, Any] = field(default_factory=dict)
    """What the cluster must deliver, keyed as the spec names it: workload, flops, gpu,
    deadline_days, mfu. Recorded on the component so a policy can recompute the need."""
    image: str | None = None
    """Override of the node image: an AMI id or SSM parameter name (AWS), ``publisher:offer:sku:version``
    or an image resource id (Azure), ``<project>/<family>`` or an image self link (GCP)."""
    ssh_public_key: str | None = None
    """OpenSSH public key for the admin user, where the cloud needs one (Azure scale sets)."""


@dataclass(frozen=True)
class InferencePoolArgs:
    """Inputs of an :class:`~components.cluster.InferencePool`."""

    pool: PoolPlan
    """An inference pool of the plan: zones, min_nodes..nodes, scaling metric and target."""
    network: SiteNetwork
    """The network of the pool's site."""
    demand: Mapping[str, Any] = field(default_factory=dict)
    """The service's demand and model shape, keyed as the spec names them (peak_tokens_per_s,
    growth_per_month, ..., model, gpus_per_replica). Recorded on the component for policies."""
    image: str | None = None
    """Override of the node image (same forms as :attr:`TrainingClusterArgs.image`)."""
    ssh_public_key: str | None = None
    """OpenSSH public key for the admin user, where the cloud needs one (Azure scale sets)."""
    serving: ServingSpec | None = None
    """On Kubernetes: how the Deployment scales (the KEDA ScaledObject's query, target, namespace)."""


# --- what a backend hands back ---------------------------------------------------------------------


@dataclass
class NetworkBuild:
    """What a backend built for a site network.

    Attributes:
        network_id: the VPC / VNet / system network id.
        subnet_ids: subnet id per zone (a cloud with regional subnets maps every zone to the same one).
        handles: cloud-specific objects the same cloud's cluster and pool builders need (e.g. GCP
            fabric networks, the Azure resource group). Only that cloud's backend reads them.
        cluster_subnet_ids: an attached cluster's network (nothing built): its subnets per zone,
            several a zone where it has them (``subnet_ids`` is then empty).
    """

    network_id: pulumi.Input[str]
    subnet_ids: dict[str, pulumi.Input[str]]
    handles: dict[str, Any] = field(default_factory=dict)
    cluster_subnet_ids: dict[str, pulumi.Input[list[str]]] | None = None


@dataclass
class ClusterBuild:
    """What a backend built for a training cluster.

    Attributes:
        node_group_ids: the node groups (ASG names, scale-set ids, MIG self links).
        placement_ids: placement group name / proximity placement group id / resource policy link.
        fabric_interfaces_attached: fabric NICs per node the template really attaches (EFA
            interfaces, MRDMA / GPU NICs); for Azure the HCAs InfiniBand brings up in a single
            placement group.
    """

    node_group_ids: list[pulumi.Input[str]]
    placement_ids: list[pulumi.Input[str]]
    fabric_interfaces_attached: int


@dataclass
class PoolBuild:
    """What a backend built for an inference pool.

    Attributes:
        node_group_id: the autoscaled group (ASG name, scale-set id, regional MIG self link).
        autoscaler_id: the scaling policy / autoscale setting / autoscaler.
        warm_nodes: pre-initialised stopped nodes kept beside the group (0 where the cloud has no
            such pool or the configuration forbids it).
        notes: choices the reader should know about (e.g. why no warm pool).
    """

    node_group_id: pulumi.Input[str]
    autoscaler_id: pulumi.Input[str]
    warm_nodes: int = 0
    notes: list[str] = field(default_factory=list)


# --- the backend contract --------------------------------------------------------------------------


class CloudBackend(ABC):
    """One cloud's implementation of the three facades. Stateless.

    What the cloud offers and refuses is not here but in its profile (:attr:`profile`, from
    :mod:`gpufleet.clouds`): a backend builds what the profile describes and
    :mod:`gpufleet.checks` has already accepted.
    """

    name: ClassVar[str] = ""
    """The cloud name as the spec writes it (set by :func:`register`)."""
    profile: ClassVar[CloudProfile]
    """The cloud's profile (set by :func:`register`)."""

    # building (inside the facade's constructor) ------------------------------------------------------

    @abstractmethod
    def provider(self, site: SiteSpec) -> pulumi.ProviderResource:
        """The site's explicit provider. Must read no credentials at construction time."""

    @abstractmethod
    def build_network(self, owner: SiteNetwork, args: SiteNetworkArgs) -> NetworkBuild:
        """Create the site's network as children of ``owner``."""

    @abstractmethod
    def build_training(self, owner: TrainingCluster, args: TrainingClusterArgs) -> ClusterBuild:
        """Create a training cluster's resources as children of ``owner``."""

    @abstractmethod
    def build_inference(self, owner: InferencePool, args: InferencePoolArgs) -> PoolBuild:
        """Create an autoscaled inference pool's resources as children of ``owner``."""


# --- registry --------------------------------------------------------------------------------------

_REGISTRY: dict[str, CloudBackend] = {}

B = TypeVar("B", bound=type[CloudBackend])


def register_in(registry: dict[str, Any], name: str, cls: type[Any], what: str = "backend") -> None:
    """Register an instance of ``cls`` under a cloud name, giving the class that name and the cloud's
    profile (the registries of :class:`CloudBackend` and of the Kubernetes backends).

    Raises:
        ValueError: another class already holds the name.
        KeyError: :mod:`gpufleet.clouds` knows no such cloud.
    """
    if name in registry and type(registry[name]) is not cls:
        raise ValueError(f"a {what} for {name!r} is already registered ({type(registry[name]).__name__})")
    cls.name = name
    cls.profile = clouds.profile(name)
    registry[name] = cls()


def register(name: str) -> Callable[[B], B]:
    """Class decorator: register a :class:`CloudBackend` under a cloud name (see :func:`register_in`)."""

    def decorate(cls: B) -> B:
        register_in(_REGISTRY, name, cls)
        return cls

    return decorate


def backend_for(cloud: str) -> CloudBackend:
    """The backend registered for a cloud (its module, ``components.<cloud>``, imported on first use).

    Raises:
        KeyError: no backend for that cloud (the message lists the registered ones).
    """
    return lazy_lookup(_REGISTRY, cloud, _backend_modules())


def registered() -> tuple[str, ...]:
    """Cloud names with a backend, sorted (every cloud's backend module loaded first)."""
    return load_all(_REGISTRY, _backend_modules())


def _backend_modules() -> dict[str, str]:
    """Each cloud's backend module, ``components.<cloud>``, which registers itself: only the clouds a
    stack uses are imported (each one loads its provider SDK, seconds of CPU)."""
    return {cloud: f"components.{cloud}" for cloud in clouds.names()}


R = TypeVar("R")


def lazy_lookup(registry: Mapping[str, R], cloud: str, modules: Mapping[str, str], what: str = "backend") -> R:
    """``registry[cloud]``, importing ``modules[cloud]`` (the module that registers it) on first use: the
    one lazy lookup of the VM backends' registry and the Kubernetes backends'.

    Raises:
        KeyError: none for that cloud (the message names ``what`` and lists the registered ones).
    """
    if cloud not in registry and cloud in modules:
        importlib.import_module(modules[cloud])
    try:
        return registry[cloud]
    except KeyError:
        raise KeyError(f"no gpufleet {what} for cloud {cloud!r}; "
                       f"registered: {', '.join(load_all(registry, modules)) or 'none'}") from None


def load_all(registry: Mapping[str, Any], modules: Mapping[str, str]) -> tuple[str, ...]:
    """The clouds ``registry`` holds, sorted, once every module of ``modules`` is imported."""
    for module in modules.values():
        importlib.import_module(module)
    return tuple(sorted(registry))


# --- helpers shared by the backends ----------------------------------------------------------------


class TrainingTarget(NamedTuple):
    """What every backend's ``build_training`` starts from: the pool, its catalog row, the
    component's name (the prefix of its children) and the one zone a training cluster sits in."""

    pool: PoolPlan
    row: InstanceType
    name: str
    zone: str

    @classmethod
    def of(cls, owner: Any, args: TrainingClusterArgs) -> TrainingTarget:
        pool = args.pool
        return cls(pool, load_catalog().instance(pool.instance_type), owner.pulumi_resource_name, pool.zones[0])


def child(owner: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    """Options for a child resource: ``parent=owner`` (which also hands it the site's provider)."""
    return pulumi.ResourceOptions(parent=owner, **kwargs)


def invoke_opts(owner: pulumi.Resource) -> pulumi.InvokeOutputOptions:
    """Options for a data-source call made on behalf of ``owner`` (its provider, its parent)."""
    return pulumi.InvokeOutputOptions(parent=owner)


def carve(cidr: str, new_prefix: int, index: int) -> str:
    """The ``index``-th subnet of prefix ``new_prefix`` inside ``cidr`` (deterministic addressing).

    Raises:
        ValueError: ``cidr`` has fewer than ``index + 1`` such subnets.
    """
    net = ipaddress.ip_network(cidr)
    prefix = max(new_prefix, net.prefixlen)
    count = 2 ** (prefix - net.prefixlen)
    if index >= count:
        raise ValueError(f"{cidr} has only {count} /{prefix} subnets, asked for number {index + 1}")
    size = 2 ** (net.max_prefixlen - prefix)
    return str(ipaddress.ip_network((int(net.network_address) + index * size, prefix)))


def pool_facts(pool: PoolPlan) -> dict[str, Any]:
    """The pool as plain JSON (the plan's sizing detail left out), for component props and outputs."""
    facts: dict[str, Any] = {
        "name": pool.name,
        "workload": pool.workload,
        "role": pool.role,
        "cloud": pool.cloud,
        "site": pool.site,
        "region": pool.region,
        "zones": list(pool.zones),
        "nodes_by_zone": dict(sorted(pool.nodes_by_zone.items())),
        "instance_type": pool.instance_type,
        "fallback_instance_types": list(pool.fallback_instance_types),
        "gpu": pool.gpu,
        "gpus_per_node": pool.gpus_per_node,
        "nodes": pool.nodes,
        "min_nodes": pool.min_nodes,
        "max_nodes": pool.nodes,
        "gpus": pool.gpus,
        "node_power_kw": pool.node_power_kw,
        "pue": pool.pue,
        "power_kw": pool.power_kw,
        "usd_per_hour": pool.usd_per_hour,
        "fabric": pool.fabric,
        "fabric_interfaces": pool.fabric_interfaces,
        "fabric_gbps": pool.fabric_gbps,
        "fabric_enabled": pool.fabric_enabled,
        "fabric_setup_by_workload": pool.fabric_setup_by_workload or None,
        "islands": list(pool.islands),
        "allow_multiple_islands": pool.allow_multiple_islands or None,
        "capacity_type": pool.capacity_type,
        "reservation_id": pool.reservation_id,
        "placement_group": pool.placement_group,
        "placement_group_name": pool.placement_group_name,
        "reservation_bound": pool.reservation_bound,
        "tags": pool.tags,
        "notes": list(pool.notes) or None,
        "platform": pool.platform if pool.platform != "vm" else None,
        "cluster": pool.cluster,
        "accelerator_kind": pool.accelerator_kind if pool.accelerator_kind != "gpu" else None,
        "topology": pool.topology,
        "slices": pool.slices if pool.topology is not None else None,
    }
    if pool.role == "inference":
        facts.update({
            "demand_tokens_per_s": pool.demand_tokens_per_s,
            "tokens_per_s_per_node": pool.tokens_per_s_per_node,
            "scaling_metric_name": pool.scaling_metric_name,
            "scaling_metric_namespace": pool.scaling_metric_namespace,
            "scaling_target_per_node": pool.scaling_target_per_node,
            "boot_minutes": pool.boot_minutes,
        })
        if pool.platform == "kubernetes":
            facts.update({"min_replicas": pool.min_replicas, "max_replicas": pool.max_replicas})
    return {k: v for k, v in facts.items() if v is not None}

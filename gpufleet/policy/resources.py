"""What the stack provisions, read from the cloud resources themselves.

Pure: works on plain dicts (a resource's type, name, URN, parent URN and properties, as the engine
sends them to ``AnalyzeStack``); no Pulumi import, so every rule can be tested on hand-built dicts.

Capacity is read from the resources that decide it, never from what a component says it asked for,
so a maximum lowered by hand (not through the spec) is still seen. Which resources those are, and
how to read them, is each cloud's :class:`CloudReader` (``gpufleet/clouds/<cloud>/readers.py``,
chosen through :func:`gpufleet.clouds.reader`): its node groups (nodes, zones, instance type, the
templates they launch from), its autoscalers (min / max) and its fabric (NICs, placement). This
module holds the cloud-neutral model and the walk that builds it.

Each resource belongs to a *pool* (one workload at one site): by its ``gpufleet-pool`` tag or
label, or else by its nearest ``gpufleet:index:InferencePool`` / ``TrainingCluster`` ancestor.
Autoscalers carry no labels on GCP, hence the ancestor walk. A pool's demand and facts (instance
type, node power) come from its component's props; site envelopes and quotas from the
``gpufleet:index:SiteNetwork`` props.

Unknown values (Pulumi's sentinel strings during a preview) never raise here: a number that decides
capacity and is unknown is recorded in :attr:`Pool.unknown`, and the rules say they could not check.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from gpufleet import clouds
from gpufleet.names import (
    INFERENCE_POOL,
    SITE_NETWORK,
    TAG_GPU,
    TAG_GPUS_PER_NODE,
    TAG_POOL,
    TAG_ROLE,
    TAG_SITE,
    TAG_WORKLOAD,
    TRAINING_CLUSTER,
    UNKNOWN_VALUES,
)

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType

def is_unknown(value: Any) -> bool:
    """True for a value Pulumi cannot know during a preview."""
    return isinstance(value, str) and value in UNKNOWN_VALUES


def cannot_verify(subject: str, what: str) -> str:
    """The message of a deciding value that is unknown during a preview (rules fail closed on it)."""
    return f"{subject}: cannot verify {what} because it is unknown until apply"


def _items(value: Any) -> list[Any]:
    """A list's items or an object's values (nothing for anything else)."""
    if isinstance(value, Mapping):
        return list(value.values())
    return list(value) if isinstance(value, list) else []


def unknown_at(unknown: list[str], resource: Resource, *paths: str) -> bool:
    """Append to ``unknown`` each dotted property path of ``resource`` whose value is unknown (or a
    list or object directly holding one, or reached through an unknown); ``*`` steps into every list item
    (``networkInterfaces.*.nicType``). True when one is. Readers call it before deciding on a value,
    and skip that check."""
    found = False
    for path in paths:
        values: list[Any] = [resource.props]
        hit = False
        for part in path.split("."):
            if any(is_unknown(v) for v in values):
                hit = True
                break
            if part == "*":
                values = [item for v in values if isinstance(v, list) for item in v]
            else:
                values = [pick(v, part) for v in values]
        hit = hit or any(is_unknown(v) or any(is_unknown(i) for i in _items(v)) for v in values)
        if hit:
            unknown.append(cannot_verify(resource.name, path))
            found = True
    return found


# --- reading plain property dicts ------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@lru_cache(maxsize=4096)
def _spellings(name: str) -> tuple[str, ...]:
    """``name`` as written, camelCase and snake_case (each once): the keys :func:`pick` tries."""
    return tuple(dict.fromkeys((name, _camel(name), _snake(name))))


def pick(props: Mapping[str, Any] | None, *names: str, default: Any = None) -> Any:
    """The first of ``names`` present in ``props``, trying each as written, camelCase and snake_case.

    Component props are snake_case (as the program wrote them); cloud resources' properties are
    camelCase (as the engine sees them). Either spelling finds either.
    """
    if not isinstance(props, Mapping):
        return default
    for name in names:
        for key in _spellings(name):
            if key in props:
                return props[key]
    return default


def as_number(value: Any) -> float | None:
    """A finite number, or None (unknown, missing, not a number). Numeric strings count (Azure)."""
    if isinstance(value, bool) or value is None or is_unknown(value):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_int(value: Any) -> int | None:
    number = as_number(value)
    return None if number is None else int(round(number))


@lru_cache(maxsize=1)
def _tag_paths() -> tuple[tuple[str, ...], ...]:
    return clouds.tag_paths()  # the registry of clouds is fixed once imported


def tags_of(props: Mapping[str, Any]) -> dict[str, str]:
    """Tags or labels as a plain ``{key: value}`` map (known string values only).

    Reads every place a known cloud keeps them (:func:`gpufleet.clouds.tag_paths`), each a map or a
    list of ``{key, value}``; the first place holding a key wins.
    """
    out: dict[str, str] = {}
    for path in _tag_paths():
        source: Any = props
        for name in path:
            source = pick(source, name)
        if isinstance(source, Mapping):
            items: Iterable[tuple[Any, Any]] = source.items()
        elif isinstance(source, list):
            items = ((t.get("key"), t.get("value")) for t in source if isinstance(t, Mapping))
        else:
            continue
        for key, value in items:
            if isinstance(key, str) and isinstance(value, str) and not is_unknown(value):
                out.setdefault(key, value)
    return out


# --- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """A resource as ``AnalyzeStack`` sees it, with plain-dict properties."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    """URNs it depends on (input references among them): a reference unknown during a preview
    still names its target here."""

    @cached_property
    def tags(self) -> dict[str, str]:
        """:func:`tags_of` its properties, read once (the properties of a resource do not change)."""
        return tags_of(self.props)


@dataclass
class NodeGroup:
    """A set of identical nodes the cloud scales as one (ASG, scale set, MIG) or a single instance.

    Attributes:
        min_nodes / max_nodes: the autoscaler's bounds (a fixed-size group: its size, both).
        count: the nodes a fixed-size (training) group runs.
        zones: the zones its nodes spread over, evenly ("" when the cloud picks).
        autoscaler: the autoscale setting / autoscaler governing it, if any.
        instance_type: read from the launch template / scale-set SKU / instance template.
        templates: the launch or instance templates it launches from.
        spot_nodes, spot_group: of ``max_nodes``, how many may be spot (None: unknown); all of them (an
            Azure Spot scale set, a GCP SPOT MIG). :func:`gpufleet.policy.spot.on_demand_max` reads both.
    """

    resource: Resource
    cloud: str
    min_nodes: int | None = None
    max_nodes: int | None = None
    count: int | None = None
    zones: tuple[str, ...] = ()
    autoscaler: Resource | None = None
    instance_type: str | None = None
    templates: list[Resource] = field(default_factory=list)
    spot_nodes: int | None = 0
    spot_group: bool = False

    @property
    def name(self) -> str:
        return self.resource.name


@dataclass
class Pool:
    """One workload's nodes at one site: a component and the node groups it owns.

    Attributes:
        name: the ``gpufleet-pool`` value (``<workload>-<site>``), or the component's name.
        component: the InferencePool / TrainingCluster component, if the stack has one.
        demand: the demand its component declares (keys as the spec names them), or {}.
        unknown: descriptions of deciding values that are unknown during this preview.
    """

    name: str
    workload: str = ""
    role: str = ""
    site: str = ""
    cloud: str = ""
    gpu: str = ""
    gpus_per_node: int | None = None
    instance_type: str | None = None
    node_power_kw: float | None = None
    component: Resource | None = None
    groups: list[NodeGroup] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def demand(self) -> dict[str, Any]:
        value = pick(self.component.props, "demand") if self.component else None
        return dict(value) if isinstance(value, Mapping) else {}

    @property
    def urn(self) -> str:
        """Where a finding about the pool points: its component, else its first node group."""
        if self.component is not None:
            return self.component.urn
        return self.groups[0].resource.urn if self.groups else ""

    @property
    def declared_zones(self) -> tuple[str, ...]:
        zones = pick(self.component.props, "zones") if self.component else None
        return tuple(z for z in zones if isinstance(z, str)) if isinstance(zones, list) else ()

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r.type in types]

    @property
    def max_nodes(self) -> int | None:
        """Σ of the groups' maximum (None when one is unknown)."""
        values = [g.max_nodes for g in self.groups]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    @property
    def min_nodes(self) -> int | None:
        values = [g.min_nodes for g in self.groups]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    @property
    def count(self) -> int | None:
        """Nodes a fixed-size (training) pool runs: Σ min(count, max) over its groups."""
        total = 0
        for g in self.groups:
            if g.count is None or g.max_nodes is None:
                return None
            total += min(g.count, g.max_nodes)
        return total

    def nodes_by_zone(self, *, at: str = "max") -> dict[str, int] | None:
        """Nodes per zone of the pool's site at the groups' maximum (``at="max"``) or fixed count
        (:func:`gpufleet.sizing.loss_domains` makes each a ``site/zone`` failure domain)."""
        out: dict[str, int] = {}
        for g in self.groups:
            total = g.max_nodes if at == "max" else (None if g.count is None or g.max_nodes is None
                                                     else min(g.count, g.max_nodes))
            if total is None:
                return None
            zones = g.zones or ("(zone chosen by the cloud)",)
            for zone, n in spread(total, zones).items():
                out[zone] = out.get(zone, 0) + n
        return out


@dataclass
class Site:
    """A site as its SiteNetwork component declares it."""

    name: str
    resource: Resource | None = None
    power_mw: float | None = None
    pue: float | None = None
    quota_gpus: dict[str, int] = field(default_factory=dict)
    failure_domain: str = ""
    unknown: dict[str, str] = field(default_factory=dict)
    """Deciding values of the site that are unknown during this preview: property → message."""

    @property
    def urn(self) -> str:
        return self.resource.urn if self.resource else ""


@dataclass
class Inventory:
    """Everything the rules read: pools by name, sites by name, every resource by URN."""

    pools: dict[str, Pool]
    sites: dict[str, Site]
    by_urn: dict[str, Resource]

    def copy(self) -> Inventory:
        """A copy one rule may change (readers record unknowns in ``Pool.unknown``): its pools, node
        groups, sites and their lists are its own; the frozen resources are shared."""
        def pool(p: Pool) -> Pool:
            groups = [replace(g, templates=list(g.templates)) for g in p.groups]
            return replace(p, groups=groups, resources=list(p.resources), unknown=list(p.unknown))

        sites = {k: replace(s, quota_gpus=dict(s.quota_gpus), unknown=dict(s.unknown)) for k, s in self.sites.items()}
        return Inventory({k: pool(p) for k, p in self.pools.items()}, sites, dict(self.by_urn))

    def workloads(self) -> dict[str, list[Pool]]:
        """Pools grouped by workload, workloads sorted by name."""
        out: dict[str, list[Pool]] = {}
        for pool in sorted(self.pools.values(), key=lambda p: p.name):
            if pool.workload:
                out.setdefault(pool.workload, []).append(pool)
        return dict(sorted(out.items()))


def spread(total: int, zones: Sequence[str]) -> dict[str, int]:
    """``total`` nodes over ``zones`` as evenly as the clouds balance them (the first zones get the
    remainder)."""
    base, extra = divmod(total, len(zones))
    return {z: base + (1 if i < extra else 0) for i, z in enumerate(zones)}


# --- building the inventory ------------------------------------------------------------------------


def build_inventory(resources: Iterable[Resource]) -> Inventory:
    """Read pools, node groups, autoscalers, templates and sites out of a stack's resources."""
    items = list(resources)
    by_urn = {r.urn: r for r in items}
    pools: dict[str, Pool] = {}
    sites: dict[str, Site] = {}

    for r in items:
        if r.type in (INFERENCE_POOL, TRAINING_CLUSTER):
            pool_name = _pool_name(r)
            pool = pools.setdefault(pool_name, Pool(name=pool_name))
            pool.component = r
            _fill_from_component(pool, r)
        elif r.type == SITE_NETWORK:
            site = _site(r)
            sites[site.name] = site

    owner_cache: dict[str, str | None] = {}
    for r in items:
        if r.type in (INFERENCE_POOL, TRAINING_CLUSTER, SITE_NETWORK) or r.type.startswith("pulumi:"):
            continue
        owner = _owner_pool(r, by_urn, owner_cache)
        if owner is None:
            continue
        pool = pools.setdefault(owner, Pool(name=owner))
        pool.resources.append(r)
        tags = r.tags
        pool.workload = pool.workload or tags.get(TAG_WORKLOAD, "")
        pool.role = pool.role or tags.get(TAG_ROLE, "")
        pool.site = pool.site or tags.get(TAG_SITE, "")
        pool.gpu = pool.gpu or tags.get(TAG_GPU, "")
        if pool.gpus_per_node is None:
            pool.gpus_per_node = as_int(tags.get(TAG_GPUS_PER_NODE))

    for pool in pools.values():
        _read_groups(pool)
    return Inventory(pools=dict(sorted(pools.items())), sites=dict(sorted(sites.items())), by_urn=by_urn)


def _pool_name(component: Resource) -> str:
    props = component.props
    tags = tags_of(props)
    for value in (tags.get(TAG_POOL), pick(props, "pool"), pick(props, "name")):
        if isinstance(value, str) and value and not is_unknown(value):
            return value
    return component.name


def _fill_from_component(pool: Pool, component: Resource) -> None:
    props = component.props
    demand = pick(props, "demand") or {}
    pool.role = "training" if component.type == TRAINING_CLUSTER else "inference"
    for attr, value in (("workload", pick(props, "workload") or pick(demand, "workload")),
                        ("site", pick(props, "site")), ("cloud", pick(props, "cloud")),
                        ("gpu", pick(props, "gpu") or pick(demand, "gpu")),
                        ("instance_type", pick(props, "instance_type"))):
        if isinstance(value, str) and value and not is_unknown(value):
            setattr(pool, attr, value)
    pool.gpus_per_node = as_int(pick(props, "gpus_per_node")) or pool.gpus_per_node
    pool.node_power_kw = as_number(pick(props, "node_power_kw"))


def _site(component: Resource) -> Site:
    props = component.props
    name = pick(props, "site", "name")
    quota = pick(props, "quota_gpus")
    unknown: dict[str, str] = {}
    for key in ("power_mw", "pue", "quota_gpus"):
        messages: list[str] = []
        if unknown_at(messages, component, key):
            unknown[key] = messages[0]
    return Site(
        name=name if isinstance(name, str) and name and not is_unknown(name) else component.name,
        resource=component,
        power_mw=as_number(pick(props, "power_mw")),
        pue=as_number(pick(props, "pue")),
        quota_gpus={str(k): int(v) for k, v in quota.items() if as_number(v) is not None} if isinstance(quota, Mapping) else {},
        failure_domain=str(pick(props, "failure_domain") or ""),
        unknown=unknown,
    )


def _owner_pool(r: Resource, by_urn: Mapping[str, Resource], cache: dict[str, str | None]) -> str | None:
    """The pool a resource belongs to: its ``gpufleet-pool`` tag, else its nearest pool ancestor."""
    pool_tag = r.tags.get(TAG_POOL)
    if pool_tag:
        return pool_tag
    seen: list[str] = []
    parent = r.parent
    found: str | None = None
    while parent:
        if parent in cache:
            found = cache[parent]
            break
        seen.append(parent)
        up = by_urn.get(parent)
        if up is None:
            break
        if up.type in (INFERENCE_POOL, TRAINING_CLUSTER):
            found = _pool_name(up)
            break
        tag = up.tags.get(TAG_POOL)
        if tag:
            found = tag
            break
        parent = up.parent
    for urn in seen:
        cache[urn] = found
    return found


class CloudReader(ABC):
    """How the pack reads one cloud's resources: node groups, autoscalers, fabric. Stateless.

    One implementation per cloud, ``READER`` in ``gpufleet/clouds/<cloud>/readers.py``, found through
    :func:`gpufleet.clouds.reader`.
    """

    cloud: ClassVar[str]
    """The cloud name (the :class:`NodeGroup`'s ``cloud``)."""
    group_types: ClassVar[tuple[str, ...]]
    """Type tokens of the node groups the cloud scales as one (ASG, scale set, MIG)."""
    single_node_types: ClassVar[tuple[str, ...]] = ()
    """Type tokens of single instances (a group of one)."""
    autoscaler_types: ClassVar[tuple[str, ...]] = ()
    """Type tokens of autoscalers that govern a node group from beside it."""
    component_names: ClassVar[tuple[str, str] | None] = None
    """``(group suffix, autoscaler suffix)`` of the logical names the cloud's components give a node
    group and its autoscaler (``<stem>-mig`` / ``<stem>-autoscaler``): a link when no target or
    dependency is known. None: names link nothing."""

    def named_pair(self, autoscaler: Resource, group: Resource) -> bool:
        """True when ``autoscaler`` and ``group`` carry the names the components give a pair
        (:attr:`component_names`, the same stem)."""
        if self.component_names is None:
            return False
        group_suffix, scaler_suffix = self.component_names
        return (autoscaler.name.endswith(scaler_suffix) and group.name.endswith(group_suffix)
                and autoscaler.name.removesuffix(scaler_suffix) == group.name.removesuffix(group_suffix))

    @abstractmethod
    def node_group(self, pool: Pool, r: Resource) -> NodeGroup:
        """A node group of ``pool`` (``r`` is one of :attr:`group_types` or :attr:`single_node_types`)."""

    def apply_autoscaler(self, group: NodeGroup) -> None:
        """Set ``group``'s bounds from its autoscaler (one of :attr:`autoscaler_types`)."""

    @abstractmethod
    def fabric_problems(self, pool: Pool, row: InstanceType) -> list[str]:
        """What a training pool on ``row`` lacks of the fabric ``row`` lists (NICs, placement)."""


@lru_cache(maxsize=1)
def _readers_by_type() -> dict[str, CloudReader]:
    """Every known cloud's reader, by each node group or single-node type token it reads."""
    found: dict[str, CloudReader] = {}
    for name in clouds.names():
        reader = clouds.reader(name)
        found.update(dict.fromkeys((*reader.group_types, *reader.single_node_types), reader))
    return found


def _read_groups(pool: Pool) -> None:
    """Node groups of a pool, with their bounds, zones, autoscaler, templates and instance type."""
    readers = _readers_by_type()
    groups = [readers[r.type].node_group(pool, r) for r in pool.resources if r.type in readers]
    for name in clouds.names():
        _attach_autoscalers(pool, groups, clouds.reader(name))
    for g in groups:
        if g.autoscaler is not None:
            clouds.reader(g.cloud).apply_autoscaler(g)
        for label, value in (("minimum", g.min_nodes), ("maximum", g.max_nodes)):
            if value is None:
                pool.unknown.append(cannot_verify(g.name, f"the node {label}"))
        if g.instance_type and not pool.instance_type:
            pool.instance_type = g.instance_type
        if not pool.cloud:
            pool.cloud = g.cloud
    pool.groups = sorted(groups, key=lambda g: g.resource.urn)


def known(value: Any) -> str | None:
    """``value`` if it is a known, non-empty string, else None."""
    return value if isinstance(value, str) and value and not is_unknown(value) else None


def known_list(value: Any) -> tuple[str, ...]:
    """The known, non-empty strings of a list (nothing for anything else)."""
    if isinstance(value, list):
        return tuple(v for v in value if known(v))
    return ()


def names_resource(reference: str, r: Resource) -> bool:
    """True when a reference (self link, id, name) points at ``r``."""
    names = {r.name, pick(r.props, "name"), pick(r.props, "namePrefix")}
    tail = reference.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return any(isinstance(n, str) and n and (n == tail or n == reference) for n in names)


def _attach_autoscalers(pool: Pool, groups: list[NodeGroup], reader: CloudReader) -> None:
    """Pair each of the reader's autoscalers with the node group it targets, by a real link only: its
    target reference when known, else the one free group it depends on (a target unknown during a
    preview is still a dependency), else the one free group named as the components name its pair
    (:meth:`CloudReader.named_pair`). Nothing is guessed: an autoscaler left unpaired, and every free
    group of a pool that has one, cannot be verified (the rules fail closed on them)."""
    autoscalers = pool.of_type(*reader.autoscaler_types)
    candidates = [g for g in groups if g.cloud == reader.cloud and g.resource.type in reader.group_types]
    if not autoscalers or not candidates:
        return
    free = list(candidates)
    unmatched: list[Resource] = []
    for a in sorted(autoscalers, key=lambda x: x.urn):
        target = known(pick(a.props, "targetResourceUri", "target"))
        hit = None
        if target is not None:
            hit = next((g for g in free if names_resource(target, g.resource)), None)
        if hit is None:
            unmatched.append(a)
            continue
        hit.autoscaler = a
        free.remove(hit)
    def depends(a: Resource, g: NodeGroup) -> bool:
        return g.resource.urn in a.dependencies

    def named(a: Resource, g: NodeGroup) -> bool:
        return reader.named_pair(a, g.resource)

    for link in (depends, named):
        # an autoscaler linked to one free group scales it (several: once the others pair)
        while pairs := [(a, d[0]) for a in unmatched if len(d := [g for g in free if link(a, g)]) == 1]:
            a, g = pairs[0]
            g.autoscaler = a
            free.remove(g)
            unmatched.remove(a)
    for a in unmatched:
        pool.unknown.append(cannot_verify(a.name, f"which node group of pool {pool.name} it scales (no known target, "
                                                  "dependency or component name links it to one)"))
    for g in free if unmatched else []:
        g.min_nodes = g.max_nodes = None  # its bounds may be an unpaired autoscaler's: unknown, not its own size


__all__ = [
    "CloudReader",
    "Inventory",
    "NodeGroup",
    "Pool",
    "Resource",
    "Site",
    "as_int",
    "as_number",
    "build_inventory",
    "cannot_verify",
    "is_unknown",
    "known",
    "known_list",
    "names_resource",
    "pick",
    "spread",
    "tags_of",
    "unknown_at",
]

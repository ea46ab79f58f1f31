"""The fleet plan: every pool sized (catalog + sizing) and placed (placement solver).

Pure: no Pulumi, no network. :func:`build_plan` is the one function that turns a
:class:`~gpufleet.spec.FleetSpec` into a :class:`FleetPlan`; the Pulumi program, the policy pack,
``gpufleet plan`` and ``gpufleet preview`` all call it, so a number is computed once. It also runs
:mod:`gpufleet.checks` on the plan, so every caller refuses what the clouds would refuse.

A *workload* (a training run or an inference service) becomes one or more *pools*: one per site
the placement puts it in. Pools are what the components build.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from collections.abc import Sequence
from typing import Any, Literal

from gpufleet.accelerators import TPU_FIXED_NOTE, replica_sizes, shape_of, tpu_training_shapes
from gpufleet.capacity import spot_prices
from gpufleet.catalog import Catalog, InstanceType, load_catalog
from gpufleet.checks import ProgramSettings, check_clouds, check_settings
from gpufleet.clouds import profile as cloud_profile
from gpufleet.errors import InfeasiblePlanError, Issue, SpecError
from gpufleet.forecast import growth_at
from gpufleet.names import TAG_GPU, TAG_GPUS_PER_NODE, TAG_POOL, TAG_ROLE, TAG_SITE, TAG_WORKLOAD
from gpufleet.sizing import (
    InferenceSizing,
    MemoryFit,
    TrainingSizing,
    fit_memory,
    nodes_surviving_losses, peak_nodes,
    size_inference,
    size_training,
    training_energy_mwh,
    zone_margin_sites,
)
from gpufleet.platforms import replica_bounds
from gpufleet.spec import FleetSpec, InferenceSpec, SiteSpec, TrainingSpec

PLAN_SCHEMA_VERSION = 1

Role = Literal["training", "inference"]


@dataclass(frozen=True)
class PoolPlan:
    """One pool of identical GPU nodes at one site: what a component builds.

    Attributes:
        name: unique pool name, ``<workload>-<site>`` (valid in every cloud's resource names).
        workload: the training run or inference service it serves.
        role: ``training`` or ``inference``.
        cloud, site, region: where it goes.
        zones: training: exactly one zone; inference: the zones it spreads over.
        nodes_by_zone: node count per zone (inference: at max size; training: all in one zone).
        instance_type: the primary instance type; ``fallback_instance_types`` follow in order.
        nodes: training: the cluster size; inference: the autoscaler's maximum.
        min_nodes: inference: the autoscaler's minimum (warm capacity); training: ``nodes``.
        demand_tokens_per_s: inference: the horizon demand (with headroom excluded) this pool
            carries; training: 0.
        power_kw: facility power at ``nodes`` (nodes × node_power_kw × PUE).
        usd_per_hour: list price at ``nodes``, or None when the site has no price for the type.
        islands: training: node counts per fabric island, as the cloud's profile splits the cluster
            (e.g. one Azure scale set per InfiniBand island); else [nodes].
        max_nodes_per_island, allow_multiple_islands: training: the spec's island size and its
            opt-in to spanning several islands (the cloud's profile refuses a split without it).
        fabric_gbps, fabric_enabled: the fabric bandwidth per node the nodes really have, and
            whether the fabric comes up: where the cloud's profile names a gap in what gpufleet sets
            up (:meth:`~gpufleet.clouds.base.CloudProfile.fabric_setup_gap`), the fabric is not
            enabled and its bandwidth is 0, unless the run sets it up itself
            (``fabric_setup_by_workload``).
        reservation_bound: training on a GCP reservation: the spec's choice of the reservation-bound
            provisioning model (None: the machine family's default).
        spot_nodes, spot_nodes_by_zone, spot_usd_per_hour, spot_reclaim_fraction: inference: of ``nodes``,
            those that may be spot (per zone), their price (in ``usd_per_hour`` too), the share reclaimed at once.
        notes: what a reader of the plan should know about the pool (e.g. a fabric not enabled).
        platform, cluster: ``vm`` (a node group of VMs) or ``kubernetes`` (a node pool joining the
            site's cluster named ``cluster``; None on VMs), from the site's ``platform``.
        min_replicas, max_replicas: inference on Kubernetes: the KEDA bounds of the serving
            Deployment (:func:`gpufleet.platforms.replica_bounds`); max_replicas × GPUs per replica ≤
            nodes × gpus_per_node. 0 elsewhere.
        topology, slices: TPU: the slice shape (training: each slice's; inference: each VM's
            single-host slice) and, for training, how many slices of it (None and 1 otherwise).
        accelerator_kind: ``gpu``, ``tpu`` or ``trainium``; ``gpus`` and ``gpus_per_node`` count
            chips for TPUs and Trainium.
    """

    name: str
    workload: str
    role: Role
    cloud: str
    site: str
    region: str
    zones: tuple[str, ...]
    nodes_by_zone: dict[str, int]
    instance_type: str
    fallback_instance_types: tuple[str, ...]
    gpu: str
    gpus_per_node: int
    nodes: int
    min_nodes: int
    gpus: int
    node_power_kw: float
    pue: float
    power_kw: float
    usd_per_hour: float | None
    fabric: str
    fabric_interfaces: int
    fabric_gbps: float
    demand_tokens_per_s: float = 0.0
    tokens_per_s_per_node: float = 0.0
    islands: tuple[int, ...] = ()
    max_nodes_per_island: int | None = None
    allow_multiple_islands: bool = False
    capacity_type: str = "on_demand"
    reservation_id: str | None = None
    placement_group: bool = True
    placement_group_name: str | None = None
    scaling_metric_name: str = "tokens_per_s"
    scaling_metric_namespace: str = "gpufleet"
    scaling_target_per_node: float = 0.0
    boot_minutes: float = 10.0
    network_cidr: str = "10.0.0.0/16"
    fabric_enabled: bool = True
    fabric_setup_by_workload: bool = False
    reservation_bound: bool | None = None
    spot_nodes: int = 0
    spot_nodes_by_zone: dict[str, int] = field(default_factory=dict)
    spot_usd_per_hour: float | None = None
    spot_reclaim_fraction: float = 1.0
    notes: tuple[str, ...] = ()
    sizing: dict[str, Any] = field(default_factory=dict)
    platform: str = "vm"
    cluster: str | None = None
    min_replicas: int = 0
    max_replicas: int = 0
    topology: str | None = None
    accelerator_kind: str = "gpu"
    slices: int = 1

    @property
    def on_demand_nodes(self) -> int:
        """The on-demand floor: ``nodes`` less the spot ones."""
        return self.nodes - self.spot_nodes

    @property
    def tags(self) -> dict[str, str]:
        """The ``gpufleet-*`` tags/labels every GPU-bearing resource of this pool carries.

        Keys and values are valid on all three clouds (GCP labels: lowercase letters, digits,
        ``_`` and ``-``; values at most 63 characters).
        """
        return {
            TAG_WORKLOAD: self.workload,
            TAG_ROLE: self.role,
            TAG_SITE: self.site,
            TAG_POOL: self.name,
            TAG_GPU: self.gpu.lower(),
            TAG_GPUS_PER_NODE: str(self.gpus_per_node),
        }


@dataclass(frozen=True)
class WorkloadPlan:
    """A workload's demand and the capacity the plan gives it, across its pools."""

    name: str
    role: Role
    gpu: str
    pools: tuple[str, ...]
    nodes_needed: int  # carries the demand (with headroom), before loss margins
    nodes_provisioned: int  # sum of the pools' nodes (max size for inference)
    gpus_provisioned: int
    survive_zone_losses: int = 0
    survive_site_losses: int = 0
    demand_at_horizon_tokens_per_s: float = 0.0
    tokens_per_s_at_max: float = 0.0
    horizon_days: float = 0.0
    lead_time_days: float = 0.0
    days_at_planned_size: float = 0.0
    deadline_days: float = 0.0
    energy_mwh: float = 0.0
    sizing: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SitePlan:
    """A site's load under the plan."""

    name: str
    cloud: str
    region: str
    power_mw: float  # facility draw of all pools at max size
    envelope_mw: float
    gpus_by_model: dict[str, int]
    quota_gpus: dict[str, int]
    usd_per_hour: float
    failure_domain: str | None = None  # the spec's: sites sharing one fail together (sizing.site_domain)


@dataclass(frozen=True)
class FleetPlan:
    """The sized and placed fleet."""

    stack: str
    pools: tuple[PoolPlan, ...]
    workloads: tuple[WorkloadPlan, ...]
    sites: tuple[SitePlan, ...]
    usd_per_hour: float
    placement: dict[str, Any] = field(default_factory=dict)
    schema_version: int = PLAN_SCHEMA_VERSION

    @property
    def gpus(self) -> int:
        return sum(p.gpus for p in self.pools)

    @property
    def power_mw(self) -> float:
        return sum(s.power_mw for s in self.sites)

    def pool(self, name: str) -> PoolPlan:
        return next(p for p in self.pools if p.name == name)

    def pools_of(self, workload: str) -> list[PoolPlan]:
        return [p for p in self.pools if p.workload == workload]

    def to_json(self) -> dict[str, Any]:
        """A stable, JSON-ready view (``gpufleet plan --json``)."""
        return {
            "schema_version": self.schema_version,
            "stack": self.stack,
            "gpus": self.gpus,
            "power_mw": round(self.power_mw, 6),
            "usd_per_hour": round(self.usd_per_hour, 4),
            "pools": [_pool_json(p) for p in self.pools],
            "workloads": [asdict(w) for w in self.workloads],
            "sites": [asdict(s) for s in self.sites],
            "placement": self.placement,
        }


def _pool_json(pool: PoolPlan) -> dict[str, Any]:
    data = asdict(pool)
    data["zones"] = list(pool.zones)
    data["fallback_instance_types"] = list(pool.fallback_instance_types)
    data["islands"] = list(pool.islands)
    data["notes"] = list(pool.notes)
    data["demand"] = {"tokens_per_s": pool.demand_tokens_per_s} if pool.role == "inference" else {
        "flops": pool.sizing.get("flops"), "deadline_days": pool.sizing.get("inputs", {}).get("deadline_days")}
    data["tags"] = pool.tags
    return data


# --- building the plan ----------------------------------------------------------------------------


@dataclass
class _Sized:
    """A workload after sizing, before placement."""

    spec: TrainingSpec | InferenceSpec
    candidates: list[InstanceType]  # allowed instance types, preference order
    sites: list[SiteSpec]  # sites it may go to
    nodes_needed: int
    nodes_to_place: int  # with the zone-loss margin
    peak_nodes: int | None = None  # inference with spot: the floor after reclaim (the peak's nodes, zone margin in)
    training: TrainingSizing | None = None
    inference: InferenceSizing | None = None


def build_plan(spec: FleetSpec, stack: str = "dev", *, catalog: Catalog | None = None,
               time_limit_s: float = 10.0, settings: ProgramSettings | None = None,
               check: bool = True) -> FleetPlan:
    """Size every workload, place every pool, check the plan against the clouds, and return it.

    Args:
        spec: the validated spec.
        stack: the stack name the plan carries.
        catalog: the catalog (default: the shipped one).
        time_limit_s: the placement solver's time limit.
        settings: the program's config (SSH key, image overrides), where the caller knows it:
            checked with the plan, every issue in one error.
        check: False leaves the checks to the caller (the Pulumi program checks the plan it is
            handed, with its config, through :func:`gpufleet.checks.validate_plan`).

    Raises:
        SpecError: a workload cannot be sized (e.g. its allowed instance types differ in GPUs per
            node, or the model fits no allowed node), or the plan asks for something its clouds
            refuse: one error listing every issue of :func:`~gpufleet.checks.check_clouds` (and,
            with ``settings``, of :func:`~gpufleet.checks.check_settings`).
        InfeasiblePlanError: no placement satisfies power, quota and zone constraints; the
            error names the binding constraints and the smallest relaxation.
    """
    catalog = catalog or load_catalog()
    sized = [_size(w, spec, catalog, f"fleet.training[{i}]") for i, w in enumerate(spec.training)]
    sized += [_size(w, spec, catalog, f"fleet.inference[{i}]") for i, w in enumerate(spec.inference)]
    placement = _place(spec, sized, catalog, time_limit_s)
    assigned: dict[str, list[Any]] = {}  # grouped once: every step below stays linear in the fleet
    for a in placement.assignments:
        assigned.setdefault(a.pool, []).append(a)
    pools: list[PoolPlan] = []
    for item in sized:
        pools += _pools_for(item, spec, catalog, assigned.get(item.spec.name, []))
    pools.sort(key=lambda p: (p.workload, p.site))
    by_workload: dict[str, list[PoolPlan]] = {}
    by_site: dict[str, list[PoolPlan]] = {}
    for p in pools:
        by_workload.setdefault(p.workload, []).append(p)
        by_site.setdefault(p.site, []).append(p)
    workloads = tuple(_workload_plan(item, by_workload.get(item.spec.name, [])) for item in sized)
    sites = tuple(_site_plan(site, by_site.get(site.name, [])) for site in spec.sites)
    plan = FleetPlan(
        stack=stack,
        pools=tuple(pools),
        workloads=workloads,
        sites=sites,
        usd_per_hour=sum(p.usd_per_hour or 0.0 for p in pools),
        placement={
            "status": placement.status,
            "cost_per_hour": placement.cost_per_hour,
            "mip_gap": placement.mip_gap,
            "solve_seconds": placement.solve_seconds,
        },
    )
    if check:
        issues = check_clouds(spec, plan, catalog=catalog)
        issues += check_settings(plan, settings) if settings is not None else []
        if issues:
            raise SpecError(issues)
    return plan


def allowed_sites(w: TrainingSpec | InferenceSpec, spec: FleetSpec) -> list[SiteSpec]:
    """The sites a workload may go to: its ``sites``, or every site of the spec."""
    if not w.sites:
        return list(spec.sites)
    by_name = {s.name: s for s in spec.sites}
    return [by_name[s] for s in w.sites]


def candidate_types(w: TrainingSpec | InferenceSpec, sites: list[SiteSpec], catalog: Catalog,
                    loc: str) -> list[InstanceType]:
    """The instance types a workload may run on, in preference order: its ``instance_types`` on the
    clouds of ``sites``, else the catalog's choice for its GPU on each of those clouds (training: the
    cloud's training type; inference: every type with the most GPUs of that GPU per node).

    :func:`build_plan` sizes a workload on these before placement (the memory fit, the zone-loss
    margin's clouds); anything that re-sizes a service as the plan does takes them from here.

    Raises:
        SpecError: at ``loc``, no type with the GPU on those clouds, or types that differ in GPUs
            per node.
    """
    clouds = sorted({s.cloud for s in sites})
    if w.instance_types:
        rows = [catalog.instance(t) for t in w.instance_types]
        rows = [r for r in rows if r.cloud in clouds]
    elif isinstance(w, TrainingSpec):
        rows = [r for c in clouds if (r := catalog.training_instance(w.gpu, c)) is not None]
    else:
        rows = []
        for c in clouds:
            options = catalog.instances_with_gpu(w.gpu, c)
            if options:
                most = max(r.gpus for r in options)
                rows += sorted((r for r in options if r.gpus == most), key=lambda r: r.instance_type)
    if not rows:
        raise SpecError(Issue(f"{loc}.gpu", f"no instance type with {w.gpu} on {', '.join(clouds)}",
                              "run `gpufleet catalog` to see which GPUs each cloud offers"))
    per_node = {r.gpus for r in rows}
    if len(per_node) > 1:
        listing = ", ".join(f"{r.instance_type} ({r.gpus})" for r in rows)
        raise SpecError(Issue(f"{loc}.instance_types",
                              f"allowed instance types differ in GPUs per node: {listing}",
                              "types with the same GPUs per node (a pool's nodes are interchangeable)"))
    return rows


def service_memory(w: InferenceSpec, candidates: Sequence[InstanceType], catalog: Catalog) -> MemoryFit:
    """A service's memory fit (GPUs per replica) as the plan sizes it, before placement: at the
    smallest GPU memory among its ``candidates`` (:func:`candidate_types`), so a replica fits on
    whichever of them the placement picks, and, on a TPU, over the single-host slice sizes of the
    first candidate (:func:`gpufleet.accelerators.replica_sizes`). Whatever type the placement
    chooses, the plan's GPUs per replica are these; the backtest's re-plans take them from here.
    """
    return fit_memory(
        params=w.model.params, layers=w.model.layers, kv_heads=w.model.kv_heads, head_dim=w.model.head_dim,
        dtype=w.model.dtype, kv_dtype=w.model.kv_dtype, context_tokens=w.context_tokens,
        concurrency=w.concurrency, gpu_memory_gib=min(r.gpu_memory_gib for r in candidates),
        gpus_per_node=candidates[0].gpus, reserved_fraction=w.memory_reserved_fraction,
        sizes=replica_sizes(catalog, w.gpu, candidates[0]),
    )


def _size(w: TrainingSpec | InferenceSpec, spec: FleetSpec, catalog: Catalog, loc: str) -> _Sized:
    allowed = allowed_sites(w, spec)
    candidates = candidate_types(w, allowed, catalog, loc)
    clouds = {r.cloud for r in candidates}
    sites = [s for s in allowed if s.cloud in clouds]
    gpus_per_node = candidates[0].gpus
    if isinstance(w, TrainingSpec):
        try:
            t = size_training(flops=w.flops, gpu=catalog.gpu(w.gpu, f"{loc}.gpu"), gpus_per_node=gpus_per_node,
                              deadline_days=w.deadline_days, mfu=w.mfu, fixed_nodes=w.nodes,
                              instance_type=candidates[0].instance_type,
                              shapes=tpu_training_shapes(catalog, w.gpu, candidates[0], f"{loc}.instance_types"),
                              slices=w.slices)
        except SpecError as exc:  # the formula names the input; the plan names the workload too
            raise SpecError([Issue(f"{loc}.{i.loc}", i.message, i.hint) for i in exc.issues]) from None
        _within_reach(t.nodes, loc, "the run needs", "a later deadline_days, fewer tokens, or pin `nodes:`")
        return _Sized(w, candidates, sites, t.nodes, t.nodes, training=t)
    memory = service_memory(w, candidates, catalog)
    if not memory.fits:
        tpu = " (TPU replicas are single-host slices)" if catalog.kind(w.gpu) == "tpu" else ""
        raise SpecError(Issue(f"{loc}.model",
                              f"{memory.required_gb:,.0f} GB of weights and KV cache fit no replica size "
                              f"of {candidates[0].instance_type}{tpu}",
                              "fewer concurrent sequences, a shorter context, a smaller dtype, or a larger GPU"))
    inf = size_inference(
        memory=memory, gpus_per_node=gpus_per_node, tokens_per_s_per_replica=w.tokens_per_s_per_replica,
        peak_tokens_per_s=w.peak_tokens_per_s, growth_per_month=_growth(w, spec.plan_confidence, loc),
        lead_time_days=w.lead_time_days, horizon_days=w.horizon_days, headroom=w.headroom,
        boot_minutes=w.boot_minutes, demand_ramp_per_minute=w.demand_ramp_per_minute,
        instance_type=candidates[0].instance_type,
    )
    _within_reach(inf.nodes, loc, "the forecast needs",
                  "a lower growth_per_month, a shorter lead_time_days or horizon_days, or less headroom")
    zoned, zones = zone_margin_sites(allowed, clouds, w.survive_zone_losses, f"{loc}.survive_zone_losses")
    peak = peak_nodes(inf.demand_at_horizon_tokens_per_s, inf.tokens_per_s_per_node)
    floor = nodes_surviving_losses(peak, zones, w.survive_zone_losses) if w.spot else None  # peak + the zone margin
    to_place = nodes_surviving_losses(inf.nodes, zones, w.survive_zone_losses)
    return _Sized(w, candidates, zoned, inf.nodes, to_place, peak_nodes=floor, inference=inf)


def _growth(w: InferenceSpec, confidence: str, loc: str) -> float:
    """The growth a service is sized to: its forecast at the plan's confidence."""
    try:
        return growth_at(w, confidence)
    except SpecError as exc:
        raise SpecError([Issue(f"{loc}.{i.loc}", i.message, i.hint) for i in exc.issues]) from None


MAX_NODES_PER_WORKLOAD = 1_000_000
"""Most nodes gpufleet plans for one workload; beyond it the inputs are a mistake, not a fleet."""


def _within_reach(nodes: float, loc: str, what: str, hint: str) -> None:
    """Refuse a sizing past :data:`MAX_NODES_PER_WORKLOAD` as bad input naming the workload."""
    if not math.isfinite(nodes) or nodes > MAX_NODES_PER_WORKLOAD:
        amount = f"{nodes:,.0f}" if math.isfinite(nodes) else "an unbounded number of"
        raise SpecError(Issue(loc, f"{what} {amount} nodes, more than gpufleet plans for one workload "
                                   f"({MAX_NODES_PER_WORKLOAD:,})", hint))


def _node_power_kw(site: SiteSpec, row: InstanceType) -> float:
    if row.instance_type in site.node_power_kw:
        return site.node_power_kw[row.instance_type]
    if row.node_power_kw is None:
        raise SpecError(Issue(f"sites.{site.name}.node_power_kw",
                              f"the catalog has no power figure for {row.instance_type}",
                              f"give node_power_kw: {{{row.instance_type}: <kW>}} for the site"))
    return row.node_power_kw


def _place(spec: FleetSpec, sized: list[_Sized], catalog: Catalog, time_limit_s: float) -> Any:
    from gpufleet.placement import InstanceFacts, PlacementProblem, solve

    problem = PlacementProblem.model_validate({
        "sites": list(spec.sites),  # the spec's sites are the placement's (gpufleet.spec.Site)
        "pools": [
            {
                "name": item.spec.name,
                "role": "training" if item.training else "inference",
                "nodes": item.nodes_to_place,
                "instance_types": [r.instance_type for r in item.candidates],
                "sites": [s.name for s in item.sites],
                **({"zone": item.spec.zone} if isinstance(item.spec, TrainingSpec) and item.spec.zone else {}),
                **({"survive_site_losses": item.spec.survive_site_losses}
                   if isinstance(item.spec, InferenceSpec) else {}),
                **({"spot": getattr(item.spec, "spot", None), "peak_nodes": item.peak_nodes} if item.peak_nodes is not None else {}),
            }
            for item in sized
        ],
        "carbon_price_per_tonne": spec.carbon_price_per_tonne,
    })
    facts = {
        r.instance_type: InstanceFacts(instance_type=r.instance_type, cloud=r.cloud, gpu=r.gpu, gpus=r.gpus,
                                       node_power_kw=r.node_power_kw or 0.0)
        for r in catalog.for_cloud()
        if r.node_power_kw is not None
    }
    result = solve(problem, facts, time_limit_s=time_limit_s)
    result.raise_if_infeasible()
    return result


def _pools_for(item: _Sized, spec: FleetSpec, catalog: Catalog, assignments: list[Any]) -> list[PoolPlan]:
    w = item.spec
    mine = [a for a in assignments if a.pool == w.name and a.nodes > 0]
    groups: dict[tuple[str, str], list[Any]] = {}
    for a in mine:
        groups.setdefault((a.site, a.instance_type), []).append(a)
    total = sum(a.nodes for a in mine) or 1
    pools: list[PoolPlan] = []
    for site_name, instance_type in sorted(groups):
        site = spec.site(site_name)
        rows = groups[(site_name, instance_type)]
        row = catalog.instance(instance_type)
        several = sum(1 for key in groups if key[0] == site_name) > 1
        pool_name = f"{w.name}-{site.name}" + (f"-{_type_slug(instance_type)}" if several else "")
        nodes_by_zone = {z: sum(a.nodes for a in rows if a.zone == z) for z in site.zones}
        nodes_by_zone = {z: n for z, n in nodes_by_zone.items() if n > 0}
        nodes = sum(nodes_by_zone.values())
        node_kw = _node_power_kw(site, row)
        price = site.price_per_gpu_hour.get(row.instance_type)
        spot = spot_prices(nodes, rows, row.gpus, price, site.spot_price_per_gpu_hour.get(row.instance_type))
        fallbacks = tuple(r.instance_type for r in item.candidates
                          if r.cloud == site.cloud and r.instance_type != row.instance_type)
        common: dict[str, Any] = dict(
            accelerator_kind=catalog.kind(row.gpu),
            name=pool_name, workload=w.name, cloud=site.cloud, site=site.name,
            region=site.region, instance_type=row.instance_type, gpu=row.gpu, gpus_per_node=row.gpus,
            nodes=nodes, gpus=nodes * row.gpus, node_power_kw=node_kw, pue=site.pue,
            power_kw=nodes * node_kw * site.pue,
            usd_per_hour=spot.pop("usd_per_hour"),
            fabric=row.fabric, fabric_interfaces=row.fabric_interfaces,
            network_cidr=site.network_cidr, platform=site.platform.kind, cluster=site.platform.cluster_name(site.name),
            **_fabric_facts(row, cloud_profile(site.cloud).fabric_setup_gap(row),
                            isinstance(w, TrainingSpec) and w.fabric_setup_by_workload),
        )
        catalog_rows = {"instance_type": row.instance_type, "source": row.source,
                        "fabric_source": row.fabric_source, "node_power_basis": row.node_power_basis}
        if isinstance(w, TrainingSpec):
            assert item.training is not None
            zones = tuple(sorted(nodes_by_zone))
            pools.append(PoolPlan(
                role="training", zones=zones, nodes_by_zone=nodes_by_zone, fallback_instance_types=(),
                min_nodes=nodes, islands=cloud_profile(site.cloud).islands(nodes, w.max_nodes_per_island),
                max_nodes_per_island=w.max_nodes_per_island, allow_multiple_islands=w.allow_multiple_islands,
                capacity_type=w.capacity.type,
                reservation_id=w.capacity.reservation_id, placement_group=w.capacity.placement_group,
                placement_group_name=w.capacity.placement_group_name,
                reservation_bound=w.capacity.reservation_bound,
                topology=item.training.topology, slices=item.training.slices,
                sizing={**asdict(item.training), "catalog": catalog_rows}, **common,
            ))
        else:
            assert item.inference is not None
            inf = item.inference
            share = nodes / total
            zones = tuple(z for z in site.zones if z in nodes_by_zone)
            warm = min(nodes, max(len(zones), math.ceil(round(inf.warm_nodes * share, 9))))
            host_shape = shape_of(catalog, row.gpu, row.gpus)
            if host_shape is not None and site.platform.kind == "vm":  # TPU VMs: no autoscaled form without GKE
                warm = nodes
                common["notes"] = (*common.get("notes", ()), TPU_FIXED_NOTE.format(
                    nodes=nodes, accelerator_type=host_shape.accelerator_type, topology=host_shape.topology))
            replicas = replica_bounds(site.platform.kind, w.serving, nodes, warm, row.gpus,
                                      inf.memory.gpus_per_replica)
            pools.append(PoolPlan(
                role="inference", zones=zones, nodes_by_zone=nodes_by_zone, fallback_instance_types=fallbacks,
                islands=(nodes,), min_nodes=replicas.min_nodes, min_replicas=replicas.min_replicas,
                max_replicas=replicas.max_replicas, topology=host_shape.topology if host_shape else None,
                demand_tokens_per_s=inf.demand_at_horizon_tokens_per_s * share,
                tokens_per_s_per_node=inf.tokens_per_s_per_node,
                scaling_metric_name=w.scaling.metric_name, scaling_metric_namespace=w.scaling.metric_namespace,
                scaling_target_per_node=inf.tokens_per_s_per_node * w.scaling.target_utilization,
                boot_minutes=w.boot_minutes, spot_reclaim_fraction=w.spot.reclaim_fraction if w.spot else 1.0,
                sizing={**inf.to_dict(), "catalog": catalog_rows}, **spot, **common,
            ))
    return pools


def _fabric_facts(row: InstanceType, gap: str | None, by_workload: bool) -> dict[str, Any]:
    """The fabric a pool of ``row`` really has: all of it, or none where gpufleet leaves a ``gap``
    the run does not fill (``by_workload``: the run sets that part up itself)."""
    if gap is None:
        return {"fabric_gbps": row.fabric_gbps, "fabric_enabled": True, "fabric_setup_by_workload": by_workload}
    if by_workload:
        return {"fabric_gbps": row.fabric_gbps, "fabric_enabled": True, "fabric_setup_by_workload": True,
                "notes": (f"{row.fabric} is enabled by the run itself (fabric_setup_by_workload): {gap}",)}
    return {"fabric_gbps": 0.0, "fabric_enabled": False,
            "notes": (f"{row.fabric} is not enabled, so the nodes have 0 of its {row.fabric_gbps:g} Gbps: {gap}",)}


def _type_slug(instance_type: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in instance_type.lower()).strip("-")


def _workload_plan(item: _Sized, pools: list[PoolPlan]) -> WorkloadPlan:
    w = item.spec
    provisioned = sum(p.nodes for p in pools)
    common: dict[str, Any] = dict(
        name=w.name, gpu=w.gpu, pools=tuple(p.name for p in pools), nodes_needed=item.nodes_needed,
        nodes_provisioned=provisioned, gpus_provisioned=sum(p.gpus for p in pools),
    )
    if isinstance(w, TrainingSpec):
        t = item.training
        assert t is not None
        energy = sum(training_energy_mwh(t.gpu_hours * p.nodes / max(provisioned, 1), p.gpus_per_node,
                                         p.node_power_kw, p.pue) for p in pools)
        return WorkloadPlan(role="training", days_at_planned_size=t.days_at_rounded_size,
                            deadline_days=w.deadline_days, energy_mwh=energy,
                            sizing=t.contract(), **common)
    inf = item.inference
    assert inf is not None
    return WorkloadPlan(
        role="inference", survive_zone_losses=w.survive_zone_losses, survive_site_losses=w.survive_site_losses,
        demand_at_horizon_tokens_per_s=inf.demand_at_horizon_tokens_per_s,
        tokens_per_s_at_max=provisioned * inf.tokens_per_s_per_node,
        horizon_days=w.horizon_days, lead_time_days=w.lead_time_days,
        sizing={**inf.memory.contract(), "replicas": inf.replicas, "warm_nodes": inf.warm_nodes},
        **common,
    )


def _site_plan(site: SiteSpec, pools: list[PoolPlan]) -> SitePlan:
    gpus: dict[str, int] = {}
    for p in pools:
        gpus[p.gpu] = gpus.get(p.gpu, 0) + p.gpus
    return SitePlan(
        name=site.name, cloud=site.cloud, region=site.region,
        power_mw=sum(p.power_kw for p in pools) / 1000.0, envelope_mw=site.power_mw,
        gpus_by_model=dict(sorted(gpus.items())), quota_gpus=dict(site.quota_gpus),
        usd_per_hour=sum(p.usd_per_hour or 0.0 for p in pools), failure_domain=site.failure_domain,
    )

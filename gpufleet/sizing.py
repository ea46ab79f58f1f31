"""Sizing maths: demand in, GPUs and nodes out. The only place these formulas exist.

Pure functions, no I/O, no Pulumi. The planner, the components (for counts) and the policy pack
(to recompute what a demand needs) all call these.

Training (scaling-law compute)::

    C      = 6 · N_active · D                      FLOPs (or a total the owner gives)
    GPUs   = C / (peak dense BF16 FLOP/s · MFU · deadline_s)     rounded up to whole nodes
             (TPU: up to the smallest slice shape, times the declared slices; chips count as GPUs)
    GPU-h  = C / (peak · MFU) / 3600
    days   = GPU-h / (GPUs at the rounded size · 24)

Inference (memory fit, then throughput)::

    weights   = params · bytes(dtype)
    kv_cache  = 2 · layers · kv_heads · head_dim · bytes(kv_dtype) · context · concurrency
    gpus/replica = smallest power of two ≤ one node (whole nodes beyond) with
                   gpus · memory_per_gpu · (1 − reserved) ≥ weights + kv_cache
                   (TPU: the smallest single-host slice, tensor-parallel across its chips)
    demand(t) = peak_now · (1 + growth)^(t / 30.4375 days)
    replicas  = ⌈demand(lead time + horizon) · (1 + headroom) / tokens_per_s_per_replica⌉
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from gpufleet.accelerators import slice_for_chips, smallest_slice
from gpufleet.catalog import GpuModel, Topology
from gpufleet.errors import Issue, SpecError

SECONDS_PER_DAY = 86_400.0
DAYS_PER_MONTH = 365.25 / 12
BYTES_PER_GIB = 2**30

BYTES_PER_DTYPE: dict[str, float] = {
    "fp32": 4.0,
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}


# --- training -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingSizing:
    """What a training run needs, with the inputs and catalog rows it was computed from."""

    flops: float
    gpus: int  # GPUs in the rounded fleet (nodes × GPUs per node)
    nodes: int
    gpu_hours: float  # compute needed, independent of rounding
    days_at_rounded_size: float
    gpus_exact: float  # C / (peak · MFU · deadline), before rounding
    meets_deadline: bool
    inputs: dict[str, Any] = field(default_factory=dict)
    kind: str = "gpu"  # the accelerator's kind: gpu, tpu or trainium
    topology: str | None = None  # TPU: the slice shape each slice has
    slices: int = 1  # TPU: slices of that shape (more than 1 only when the run declares them)

    def contract(self) -> dict[str, float | int | str | None]:
        """The keys ``gpufleet size training --json`` prints: five, plus ``chips`` and ``topology``
        for a TPU or Trainium chip (``gpus`` counts chips there too)."""
        keys: dict[str, float | int | str | None] = {
            "flops": self.flops,
            "gpus": self.gpus,
            "nodes": self.nodes,
            "gpu_hours": self.gpu_hours,
            "days_at_rounded_size": self.days_at_rounded_size,
        }
        if self.kind != "gpu":
            keys.update(chips=self.gpus, topology=self.topology)
        return keys


def training_flops(params: float, tokens: float, active_params: float | None = None) -> float:
    """Scaling-law training compute: 6 · N_active · D FLOPs."""
    return 6.0 * (active_params if active_params is not None else params) * tokens


def size_training(
    *,
    flops: float,
    gpu: GpuModel,
    gpus_per_node: int,
    deadline_days: float,
    mfu: float,
    fixed_nodes: int | None = None,
    instance_type: str | None = None,
    shapes: Sequence[Topology] = (),
    slices: int = 1,
) -> TrainingSizing:
    """Size a training run: the smallest whole-node fleet that finishes ``flops`` by the deadline.

    On a TPU (``shapes`` given) the fleet is ``slices`` slices of the smallest shape that covers the
    chips needed (not whole 4-chip hosts); a pinned ``fixed_nodes`` must make whole slices.

    Args:
        flops: total training compute.
        gpu: the GPU model (its dense BF16 peak is used).
        gpus_per_node: GPUs per node of the instance type (8 for HGX instances).
        deadline_days: wall-clock days allowed.
        mfu: assumed model FLOPs utilisation in (0, 1].
        fixed_nodes: a node count the owner insists on; kept, and the days it needs reported.
        instance_type: recorded in the inputs, for retracing.
        shapes: the TPU generation's slice shapes, smallest first (empty: not a TPU).
        slices: TPU slices the run declares (multi-slice over the data-centre network).

    Raises:
        SpecError: when the GPU's peak FLOP/s is not published (we will not guess it), or the
            inputs need more GPUs than a float can count (a vanishing mfu or deadline).
    """
    peak = gpu.bf16_dense_flops
    if peak is None:
        raise SpecError(Issue("gpu", f"{gpu.name} has no published dense BF16 peak in the catalog",
                              "a GPU with bf16_dense_tflops, or give the run's nodes and total_flops"))
    if not (0 < mfu <= 1):
        raise SpecError(Issue("mfu", f"must be in (0, 1], got {mfu!r}", "0 < mfu <= 1"))
    if deadline_days <= 0 or flops <= 0 or gpus_per_node <= 0:
        raise SpecError(Issue("deadline_days", "flops, deadline and GPUs per node must be positive"))
    gpu_seconds = flops / (peak * mfu)
    gpus_exact = gpu_seconds / (deadline_days * SECONDS_PER_DAY)
    if not math.isfinite(gpus_exact):
        raise SpecError(Issue("mfu", f"{flops:g} FLOPs at mfu {mfu:g} within {deadline_days:g} days needs "
                                     "more GPUs than any number can hold",
                              "a realistic mfu (0.3-0.6) and deadline"))
    shape = None
    if shapes:  # TPU: whole slices of one shape
        if fixed_nodes is not None:
            shape = slice_for_chips(fixed_nodes * gpus_per_node // slices, shapes)
            if shape.chips * slices != fixed_nodes * gpus_per_node:
                raise SpecError(Issue("nodes", f"{fixed_nodes} nodes do not split into {slices} equal slices",
                                      f"a multiple of {slices} nodes"))
        else:
            shape = smallest_slice(gpus_exact, shapes, slices)
        nodes = shape.chips * slices // gpus_per_node
    else:
        nodes = fixed_nodes if fixed_nodes is not None else max(1, math.ceil(_clean(gpus_exact / gpus_per_node)))
    gpus = nodes * gpus_per_node
    days = gpu_seconds / gpus / SECONDS_PER_DAY
    return TrainingSizing(
        flops=flops,
        gpus=gpus,
        nodes=nodes,
        gpu_hours=gpu_seconds / 3600.0,
        days_at_rounded_size=days,
        gpus_exact=gpus_exact,
        meets_deadline=days <= deadline_days * (1 + 1e-9),
        inputs={
            "gpu": gpu.name,
            "bf16_dense_tflops": gpu.bf16_dense_tflops,
            "bf16_source": gpu.source,
            "mfu": mfu,
            "deadline_days": deadline_days,
            "gpus_per_node": gpus_per_node,
            "instance_type": instance_type,
            "fixed_nodes": fixed_nodes,
            "formula": "gpus = flops / (bf16_peak * mfu * deadline_s), rounded up to whole nodes"
                       + (" (TPU: to the smallest slice shape, per slice)" if shape else ""),
        },
        kind=gpu.kind,
        topology=shape.topology if shape else None,
        slices=slices if shape else 1,
    )


def training_energy_mwh(gpu_hours: float, gpus_per_node: int, node_power_kw: float, pue: float) -> float:
    """Facility energy of a run: node-hours × node power × PUE, in MWh."""
    return gpu_hours / gpus_per_node * node_power_kw * pue / 1000.0


# --- inference ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryFit:
    """How many GPUs one replica needs to hold its weights and KV cache."""

    weights_gb: float
    kv_cache_gb: float
    required_gb: float
    usable_gb_per_gpu: float
    gpus_per_replica: int
    fits: bool  # False when even the largest allowed size does not hold it

    def contract(self) -> dict[str, float | int]:
        """The keys ``gpufleet size inference --json`` prints."""
        return {
            "weights_gb": self.weights_gb,
            "kv_cache_gb": self.kv_cache_gb,
            "gpus_per_replica": self.gpus_per_replica,
        }


def weights_bytes(params: float, dtype: str) -> float:
    return params * BYTES_PER_DTYPE[dtype]


def kv_cache_bytes(
    *, layers: int, kv_heads: int, head_dim: int, dtype: str, context_tokens: int, concurrency: int
) -> float:
    """KV cache of one replica: K and V for every layer, KV head and token in flight."""
    return 2.0 * layers * kv_heads * head_dim * BYTES_PER_DTYPE[dtype] * context_tokens * concurrency


def fit_memory(
    *,
    params: float,
    layers: int,
    kv_heads: int,
    head_dim: int,
    dtype: str,
    context_tokens: int,
    concurrency: int,
    gpu_memory_gib: float,
    gpus_per_node: int,
    kv_dtype: str | None = None,
    reserved_fraction: float = 0.1,
    max_nodes_per_replica: int = 64,
    sizes: Sequence[int] | None = None,
) -> MemoryFit:
    """The smallest GPU count per replica whose usable memory holds weights + KV cache.

    Candidates are powers of two up to one node (tensor parallelism splits heads evenly), then
    whole nodes; or, given ``sizes``, exactly those (a TPU's single-host slice chip counts: the
    replica is tensor-parallel across one slice). ``reserved_fraction`` of each GPU's memory is kept
    for the runtime.
    """
    weights = weights_bytes(params, dtype)
    kv = kv_cache_bytes(layers=layers, kv_heads=kv_heads, head_dim=head_dim, dtype=kv_dtype or dtype,
                        context_tokens=context_tokens, concurrency=concurrency)
    required = weights + kv
    usable_per_gpu = gpu_memory_gib * BYTES_PER_GIB * (1.0 - reserved_fraction)
    if sizes:
        candidates = sorted(sizes)
    else:
        candidates = [g for g in (1, 2, 4, 8, 16, 32) if g <= gpus_per_node]
        if gpus_per_node not in candidates:
            candidates.append(gpus_per_node)
        candidates += [gpus_per_node * n for n in range(2, max_nodes_per_replica + 1)]
    chosen = next((g for g in candidates if g * usable_per_gpu >= required), None)
    return MemoryFit(
        weights_gb=weights / 1e9,
        kv_cache_gb=kv / 1e9,
        required_gb=required / 1e9,
        usable_gb_per_gpu=usable_per_gpu / 1e9,
        gpus_per_replica=chosen if chosen is not None else candidates[-1],
        fits=chosen is not None,
    )


def forecast_tokens_per_s(peak_now: float, growth_per_month: float, days_from_now: float) -> float:
    """Compound growth: peak_now · (1 + growth)^(days / 30.4375)."""
    return float(peak_now * (1.0 + growth_per_month) ** (days_from_now / DAYS_PER_MONTH))


@dataclass(frozen=True)
class InferenceSizing:
    """What an inference service needs before placement spreads it over zones and sites."""

    memory: MemoryFit
    demand_at_landing_tokens_per_s: float
    demand_at_horizon_tokens_per_s: float
    replicas: int
    replicas_per_node: float  # > 1 when several replicas share a node, < 1 for multi-node replicas
    tokens_per_s_per_node: float
    nodes: int  # carries the horizon demand with headroom, before loss margins
    warm_nodes: int  # must be running to absorb demand growth while new nodes boot
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def size_inference(
    *,
    memory: MemoryFit,
    gpus_per_node: int,
    tokens_per_s_per_replica: float,
    peak_tokens_per_s: float,
    growth_per_month: float,
    lead_time_days: float,
    horizon_days: float,
    headroom: float,
    boot_minutes: float,
    demand_ramp_per_minute: float,
    instance_type: str | None = None,
) -> InferenceSizing:
    """Replicas and nodes that carry the forecast peak through the horizon, with headroom."""
    landing = forecast_tokens_per_s(peak_tokens_per_s, growth_per_month, lead_time_days)
    horizon = forecast_tokens_per_s(peak_tokens_per_s, growth_per_month, lead_time_days + horizon_days)
    replicas = max(1, math.ceil(_clean(horizon * (1.0 + headroom) / tokens_per_s_per_replica)))
    gpr = memory.gpus_per_replica
    if gpr <= gpus_per_node:
        per_node = gpus_per_node // gpr
        nodes = math.ceil(replicas / per_node)
        replicas_per_node: float = per_node
    else:
        nodes_per_replica = math.ceil(gpr / gpus_per_node)
        nodes = replicas * nodes_per_replica
        replicas_per_node = 1.0 / nodes_per_replica
    tps_per_node = tokens_per_s_per_replica * replicas_per_node
    surge = landing * min(1.0, demand_ramp_per_minute * boot_minutes)
    warm_nodes = min(nodes, max(1, math.ceil(_clean(surge / tps_per_node))))
    return InferenceSizing(
        memory=memory,
        demand_at_landing_tokens_per_s=landing,
        demand_at_horizon_tokens_per_s=horizon,
        replicas=replicas,
        replicas_per_node=replicas_per_node,
        tokens_per_s_per_node=tps_per_node,
        nodes=nodes,
        warm_nodes=warm_nodes,
        inputs={
            "instance_type": instance_type,
            "gpus_per_node": gpus_per_node,
            "tokens_per_s_per_replica": tokens_per_s_per_replica,
            "peak_tokens_per_s": peak_tokens_per_s,
            "growth_per_month": growth_per_month,
            "lead_time_days": lead_time_days,
            "horizon_days": horizon_days,
            "headroom": headroom,
            "boot_minutes": boot_minutes,
            "demand_ramp_per_minute": demand_ramp_per_minute,
            "formula": "replicas = ceil(peak * (1+growth)^((lead+horizon)/30.44d) * (1+headroom) / tps_per_replica)",
        },
    )


def peak_nodes(demand_at_horizon_tokens_per_s: float, tokens_per_s_per_node: float) -> int:
    """Nodes the forecast peak needs (headroom excluded): the floor spot is planned above."""
    return math.ceil(round(demand_at_horizon_tokens_per_s / tokens_per_s_per_node, 9))


def nodes_surviving_losses(nodes_needed: int, domains: int, losses: int) -> int:
    """Nodes to spread evenly over ``domains`` so that losing ``losses`` of them leaves ``nodes_needed``.

    Each domain gets ⌈nodes_needed / (domains − losses)⌉ nodes.
    """
    if losses <= 0:
        return nodes_needed
    if losses >= domains:
        raise SpecError(Issue("survive_zone_losses", f"cannot survive {losses} losses with {domains} domains",
                              f"at most {domains - 1}"))
    return math.ceil(nodes_needed / (domains - losses)) * domains


class ZonedSite(Protocol):
    """What the zone-loss margin reads of a site (:class:`gpufleet.spec.SiteSpec` is one)."""

    @property
    def cloud(self) -> str: ...

    @property
    def zones(self) -> Sequence[str]: ...


_Site = TypeVar("_Site", bound=ZonedSite)


def zone_margin_sites(allowed: Iterable[_Site], clouds: Collection[str], zone_losses: int,
                      loc: str = "survive_zone_losses") -> tuple[list[_Site], int]:
    """The sites an inference service may be placed on, and the zones its zone-loss margin counts.

    The sites are those of ``allowed`` (the service's ``sites``, or every site) on ``clouds`` (the
    clouds of its candidate instance types: where it could run, not where the placement put it)
    with more zones than ``zone_losses``; the margin counts the fewest zones of them, so
    :func:`nodes_surviving_losses` with that count holds wherever the placement puts the nodes. The
    margin is sized before placement (the placement's N_p carries it), so the plan, the backtest's
    re-plans and anything else that re-sizes a service take it from here.

    Raises:
        SpecError: at ``loc``, no such site.
    """
    zoned = [s for s in allowed if s.cloud in clouds and len(s.zones) > zone_losses]
    if not zoned:
        raise SpecError(Issue(loc, f"no allowed site has more than {zone_losses} zones",
                              "fewer zone losses, or sites with more zones"))
    return zoned, min(len(s.zones) for s in zoned)


Nodes = TypeVar("Nodes", int, float)
"""Nodes per domain: whole ones, or weighted ones (a spot node counts what a reclaim leaves of it)."""


def capacity_after_losses(nodes_by_domain: Mapping[str, Nodes], losses: int) -> Nodes:
    """Nodes left after the ``losses`` largest domains fail (the worst case; 0 when every domain does)."""
    counts = sorted(nodes_by_domain.values(), reverse=True)
    return sum(counts[losses:])


def left_after_losses(by_zone: Mapping[str, Nodes], by_domain: Mapping[str, Nodes], *, zone_losses: int,
                      site_losses: int) -> Nodes:
    """The fewer of what is left when the ``zone_losses`` largest zones fail and when the ``site_losses``
    largest failure domains fail (:func:`capacity_after_losses`); every node when neither is declared."""
    left = sum(by_domain.values())
    if zone_losses > 0:
        left = min(left, capacity_after_losses(by_zone, zone_losses))
    if site_losses > 0:
        left = min(left, capacity_after_losses(by_domain, site_losses))
    return left


# --- failure domains: one definition for the plan, the runway report, the diff and the pack ---------


def zone_domain(site: str, zone: str) -> str:
    """A zone as a failure domain: the pair (site, zone), ``site/zone``. Zone names are not unique
    across sites (two accounts' ``us-east-1a``, two halls' ``a``), so a zone name alone is not one."""
    return f"{site}/{zone}"


def site_domain(site: str, failure_domain: str | None) -> str:
    """The failure domain a site fails with: its declared ``failure_domain`` (shared with every site
    that declares the same one), else the site alone. A declared domain is never the site of the same
    name (``failure domain east`` is not the site ``east``), as in the placement's constraints."""
    return f"failure domain {failure_domain}" if failure_domain else site


LossPool = tuple[str, "str | None", Mapping[str, int], int]
"""What the losses of one pool depend on: (site, the site's ``failure_domain``, nodes per zone name
of that site, nodes in all)."""


def loss_domains(pools: Iterable[LossPool]) -> tuple[dict[str, int], dict[str, int]]:
    """The pools' nodes per zone (:func:`zone_domain`) and per failure domain (:func:`site_domain`)."""
    by_zone: dict[str, int] = {}
    by_domain: dict[str, int] = {}
    for site, failure_domain, nodes_by_zone, nodes in pools:
        for zone, n in nodes_by_zone.items():
            key = zone_domain(site, zone)
            by_zone[key] = by_zone.get(key, 0) + n
        key = site_domain(site, failure_domain)
        by_domain[key] = by_domain.get(key, 0) + nodes
    return by_zone, by_domain


def nodes_after_losses(pools: Iterable[LossPool], *, zone_losses: int, site_losses: int) -> int:
    """Nodes a service keeps after its declared losses: the fewer of what is left when its
    ``zone_losses`` largest zones fail and when its ``site_losses`` largest failure domains fail
    (:func:`left_after_losses` over :func:`loss_domains`); every node when it declares none."""
    by_zone, by_domain = loss_domains(pools)
    return left_after_losses(by_zone, by_domain, zone_losses=zone_losses, site_losses=site_losses)


def _clean(x: float) -> float:
    """Round away float noise before a ceiling (so 72.00000000001 nodes is 72, not 73)."""
    return round(x, 9)

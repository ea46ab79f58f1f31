"""The rules: one function per policy, each taking an :class:`Inventory` and the policy's config.

Pure (no Pulumi): call them on hand-built resources in tests. Each returns a :class:`RuleResult`:
findings (each a message a person can act on, in nodes, GPUs, MW or GB, and the URN it is about) and
the deciding values it could not read because they are unknown during a preview.

Every need is computed by :mod:`gpufleet.sizing` through :mod:`gpufleet.policy.demand`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpufleet import clouds
from gpufleet.catalog import InstanceType
from gpufleet.sizing import TrainingSizing, capacity_after_losses
from gpufleet.sizing import LossPool, loss_domains as sizing_loss_domains

from gpufleet.policy.demand import (
    Demand,
    DemandError,
    InferenceNeed,
    demand_sources,
    floor_role,
    gpu_model,
    inference_need,
    instance_row,
    memory_fit,
    training_need,
)
from gpufleet.policy.resources import Inventory, Pool, Site, as_number, pick


@dataclass(frozen=True)
class Finding:
    """One violation: what is missing, in units a person can act on, and where."""

    message: str
    urn: str = ""
    workload: str = ""


@dataclass
class RuleResult:
    """What a rule found, and the deciding values it could not read during a preview."""

    findings: list[Finding] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def add(self, message: str, urn: str = "", workload: str = "") -> None:
        self.findings.append(Finding(message, urn, workload))


Rule = Callable[[Inventory, Mapping[str, Any]], RuleResult]


# --- shared helpers --------------------------------------------------------------------------------


def _gpus(n: int, row: InstanceType) -> str:
    return f"{n * row.gpus:,} {row.gpu}"


def _power(mw: float) -> str:
    """MW with two decimals, or kW below 0.1 MW (so a small site's numbers stay readable)."""
    return f"{mw:,.2f} MW" if abs(mw) >= 0.1 else f"{mw * 1000:,.1f} kW"


def _nodes(n: int) -> str:
    return f"{n:,} node{'s' if n != 1 else ''}"


def row_for(pools: list[Pool], result: RuleResult, what: str) -> InstanceType | None:
    """The catalog row the workload's pools run (the one with the least GPU memory, as the planner
    sizes), or None after reporting why not."""
    rows = []
    for p in pools:
        row = instance_row(p.instance_type)
        if row is None:
            result.add(f"{p.name}: instance type {p.instance_type or '(none found)'} is not in the gpufleet "
                       f"catalog, so {what} cannot be checked; use a catalogued type (`gpufleet catalog`)",
                       p.urn, p.workload)
            return None
        rows.append(row)
    if not rows:
        return None
    return min(rows, key=lambda r: (r.gpu_memory_gib, r.instance_type))


def _sources(workload: str, role: str, pools: list[Pool], floors: Mapping[str, Any],
             result: RuleResult) -> list[Demand]:
    declared = [(p.name, p.demand) for p in pools if p.demand]
    try:
        return demand_sources(workload, role, declared, floors.get(workload))
    except DemandError as exc:
        result.add(str(exc), pools[0].urn if pools else "", workload)
        return []


def workloads_of(inv: Inventory, floors: Mapping[str, Any], role: str | None = None) -> list[tuple[str, str, list[Pool]]]:
    """(workload, role, pools) for every workload the stack provisions or a floor names."""
    by_workload = inv.workloads()
    names = sorted(set(by_workload) | set(floors))
    out = []
    for name in names:
        pools = by_workload.get(name, [])
        wrole = pools[0].role if pools else (floor_role(floors.get(name) or {}) or "")
        if role is None or wrole == role:
            out.append((name, wrole, pools))
    return out


def has_unknown(pools: list[Pool], result: RuleResult) -> bool:
    problems = [u for p in pools for u in p.unknown]
    result.unknown += problems
    return bool(problems)


def inference_needs(workload: str, pools: list[Pool], row: InstanceType, floors: Mapping[str, Any],
                     result: RuleResult, *, boot_minutes: float | None = None) -> list[InferenceNeed]:
    needs = []
    for source in _sources(workload, "inference", pools, floors, result):
        try:
            needs.append(inference_need(source, row, boot_minutes=boot_minutes))
        except DemandError as exc:
            result.add(str(exc), pools[0].urn if pools else "", workload)
    return needs


def _lacks_demand(workload: str, pools: list[Pool], needs: Sequence[object], result: RuleResult) -> bool:
    """True when there is no demand to check against; says so unless the workload's demand was
    already reported (e.g. as malformed)."""
    if needs:
        return False
    if not any(f.workload == workload for f in result.findings):
        result.add(f"{workload}: no demand to check capacity against: its components declare none and the "
                   "policy config gives no floor; declare the demand (gpufleet components record it) or add a floor",
                   pools[0].urn if pools else "", workload)
    return True


def _not_provisioned(workload: str, result: RuleResult) -> None:
    result.add(f"{workload}: the policy config sets a demand floor, but the stack provisions no capacity for it "
               f"(no resource tagged gpufleet-workload={workload}): 0 nodes provisioned", "", workload)


# --- capacity-covers-demand ------------------------------------------------------------------------


def check_capacity_covers_demand(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """Provisioned capacity covers the forecast through the horizon with headroom (inference), or
    finishes the run by its deadline (training)."""
    result = RuleResult()
    floors = config.get("floors") or {}
    for workload, role, pools in workloads_of(inv, floors):
        if not pools:
            _not_provisioned(workload, result)
            continue
        row = row_for(pools, result, "its capacity")
        if row is None or has_unknown(pools, result):
            continue
        if role == "training":
            _training_capacity(workload, pools, row, floors, result)
        else:
            _inference_capacity(workload, pools, row, floors, result)
    return result


def _inference_capacity(workload: str, pools: list[Pool], row: InstanceType, floors: Mapping[str, Any],
                        result: RuleResult) -> None:
    needs = inference_needs(workload, pools, row, floors, result)
    if _lacks_demand(workload, pools, needs, result):
        return
    provisioned = sum(p.max_nodes or 0 for p in pools)
    need = max(needs, key=lambda n: n.nodes)
    if provisioned >= need.nodes:
        return
    short = need.nodes - provisioned
    s = need.sizing
    horizon = need.demand.get("horizon_days")
    result.add(
        f"{workload}: {_nodes(provisioned)} provisioned at the {horizon:g}-day horizon, forecast needs "
        f"{need.nodes:,} ({_nodes(short)}, {_gpus(short, row)} short); demand {need.demand.source}: "
        f"{s.demand_at_horizon_tokens_per_s:,.0f} tokens/s by day "
        f"{need.demand.get('lead_time_days') + horizon:g} with {need.demand.get('headroom'):.0%} headroom, "
        f"{s.tokens_per_s_per_node:,.0f} tokens/s per {row.instance_type} node; pools: "
        + ", ".join(f"{p.name} max {p.max_nodes}" for p in pools),
        pools[0].urn, workload)


def training_needs(workload: str, pools: list[Pool], row: InstanceType, floors: Mapping[str, Any],
                   result: RuleResult) -> list[tuple[Demand, TrainingSizing]]:
    """Each training demand of a workload, sized on ``row`` (problems go to ``result``)."""
    sizings = []
    for source in _sources(workload, "training", pools, floors, result):
        try:
            sizings.append((source, training_need(source, row, gpu_model(pools[0].gpu) if pools else None)))
        except DemandError as exc:
            result.add(str(exc), pools[0].urn if pools else "", workload)
    return sizings


def _training_capacity(workload: str, pools: list[Pool], row: InstanceType, floors: Mapping[str, Any],
                       result: RuleResult) -> None:
    sizings = training_needs(workload, pools, row, floors, result)
    if _lacks_demand(workload, pools, sizings, result):
        return
    provisioned = sum(p.count or 0 for p in pools)
    source, need = max(sizings, key=lambda x: x[1].nodes)
    if provisioned >= need.nodes:
        return
    short = need.nodes - provisioned
    deadline = source.get("deadline_days")
    at = (f"at {_nodes(provisioned)} the run takes {need.gpu_hours / (provisioned * row.gpus) / 24:,.1f} days"
          if provisioned else "no node runs it")
    result.add(
        f"{workload}: {_nodes(provisioned)} provisioned, the {deadline:g}-day deadline needs {need.nodes:,} "
        f"({_nodes(short)}, {_gpus(short, row)} short); {at}; demand {source.source}: "
        f"{need.flops:.3g} FLOPs at {source.get('mfu'):.0%} MFU on {row.instance_type}",
        pools[0].urn, workload)


# --- survives-zone-loss ----------------------------------------------------------------------------


def check_survives_zone_loss(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """After losing the declared zones (or sites), the rest still carries the forecast peak."""
    result = RuleResult()
    floors = config.get("floors") or {}
    for workload, _role, pools in workloads_of(inv, floors, "inference"):
        if not pools:
            continue  # capacity-covers-demand reports a floor with no capacity
        row = row_for(pools, result, "zone-loss survival")
        if row is None or has_unknown(pools, result):
            continue
        needs = inference_needs(workload, pools, row, floors, result)
        if not needs:
            continue
        need_nodes = max(n.nodes for n in needs)
        zone_losses = max(n.zone_losses for n in needs)
        site_losses = max(n.site_losses for n in needs)
        urn = pools[0].urn
        by_zone, by_domain = loss_domains(inv, pools)
        if zone_losses > 0:
            _check_losses(workload, "zone", by_zone, zone_losses, need_nodes, row, urn, result)
        if site_losses > 0:
            _check_losses(workload, "site", by_domain, site_losses, need_nodes, row, urn, result)
    return result


def loss_pools(inv: Inventory, pools: list[Pool]) -> list[LossPool]:
    """The pools at full scale as :func:`gpufleet.sizing.loss_domains` reads them: site, its declared
    failure domain, nodes per zone, nodes."""
    def failure_domain(p: Pool) -> str | None:
        site = inv.sites.get(p.site)
        return site.failure_domain if site and site.failure_domain else None

    return [(p.site or p.name, failure_domain(p), p.nodes_by_zone() or {}, p.max_nodes or 0) for p in pools]


def loss_domains(inv: Inventory, pools: list[Pool]) -> tuple[dict[str, int], dict[str, int]]:
    """The pools' nodes at full scale per zone and per failure domain, grouped as the plan and the
    runway report group them (:func:`gpufleet.sizing.loss_domains`)."""
    return sizing_loss_domains(loss_pools(inv, pools))


def _check_losses(workload: str, kind: str, by_domain: dict[str, int], losses: int, need: int,
                  row: InstanceType, urn: str, result: RuleResult) -> None:
    left = capacity_after_losses(by_domain, losses)
    if left >= need:
        return
    lost = sorted(by_domain.items(), key=lambda kv: (-kv[1], kv[0]))[:losses]
    short = need - left
    what = ", ".join(f"{d} with {n}" for d, n in lost) or "every one"
    plural = "s" if len(by_domain) != 1 else ""
    result.add(
        f"{workload}: losing {losses} of {len(by_domain)} {kind}{plural} ({what}) leaves {_nodes(left)}, the "
        f"forecast peak needs {need:,} ({_nodes(short)}, {_gpus(short, row)} short)", urn, workload)


# --- warm-capacity-covers-boot-time ----------------------------------------------------------------


def check_warm_capacity(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """The autoscalers' minimum absorbs the demand growth during a node's boot and model load."""
    result = RuleResult()
    floors = config.get("floors") or {}
    default_boot = float(config.get("default_boot_minutes") or 10)
    from gpufleet.policy.keda import declares_scale_to_zero  # it builds on the helpers here

    for workload, _role, pools in workloads_of(inv, floors, "inference"):
        if not pools or all(declares_scale_to_zero(p) for p in pools):
            continue
        row = row_for(pools, result, "warm capacity")
        if row is None or has_unknown(pools, result):
            continue
        needs = inference_needs(workload, pools, row, floors, result, boot_minutes=default_boot)
        if not needs:
            continue
        need = max(needs, key=lambda n: n.sizing.warm_nodes)
        warm = sum(p.min_nodes or 0 for p in pools)
        if warm >= need.sizing.warm_nodes:
            continue
        s = need.sizing
        ramp = need.demand.get("demand_ramp_per_minute")
        surge = s.demand_at_landing_tokens_per_s * min(1.0, ramp * need.boot_minutes)
        short = s.warm_nodes - warm
        result.add(
            f"{workload}: the autoscalers keep {_nodes(warm)} running; demand can rise {surge:,.0f} tokens/s "
            f"({ramp:.0%} of peak per minute) during a {need.boot_minutes:g}-minute boot, which needs "
            f"{s.warm_nodes:,} running ({_nodes(short)}, {_gpus(short, row)} short)", pools[0].urn, workload)
    return result


# --- training-fabric-complete ----------------------------------------------------------------------


def check_training_fabric(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """A multi-node training cluster has its full fabric, one zone, and its compact placement."""
    result = RuleResult()
    min_nodes = int(config.get("min_nodes") or 2)
    for pool in inv.pools.values():
        if pool.role != "training" or not pool.groups:
            continue
        if has_unknown([pool], result):
            continue
        count = pool.count or 0
        if count < min_nodes:
            continue
        row = instance_row(pool.instance_type)
        if row is None:
            result.add(f"{pool.name}: instance type {pool.instance_type or '(none found)'} is not in the gpufleet "
                       "catalog, so its fabric cannot be checked", pool.urn, pool.workload)
            continue
        problems = _zone_problems(pool) + _fabric_problems(pool, row)
        has_unknown([pool], result)  # fabric values the reader could not read: its checks of them skipped
        if problems:
            result.add(f"{pool.name}: {count}-node {row.instance_type} training cluster is missing fabric: "
                       + "; ".join(problems), pool.urn, pool.workload)
    return result


def _zone_problems(pool: Pool) -> list[str]:
    zones = sorted({z for g in pool.groups for z in g.zones})
    if any(not g.zones for g in pool.groups):
        return ["its node group does not pin a zone (the cloud may spread the nodes over several)"]
    if len(zones) > 1:
        return [f"it spans zones {', '.join(zones)} (a fabric does not cross zones)"]
    return []


def _fabric_problems(pool: Pool, row: InstanceType) -> list[str]:
    """What the pool lacks of its row's fabric, as the row's cloud reads its resources."""
    if row.fabric == "none" or row.fabric_interfaces <= 0:
        return []
    if row.fabric not in clouds.profile(row.cloud).fabrics:
        return [f"fabric {row.fabric!r} has no check"]
    return clouds.reader(row.cloud).fabric_problems(pool, row)


# --- power-within-envelope -------------------------------------------------------------------------


@dataclass(frozen=True)
class Draw:
    """A pool's facility draw at full scale."""

    pool: Pool
    nodes: int
    node_kw: float
    pue: float

    @property
    def kw(self) -> float:
        return self.nodes * self.node_kw * self.pue


def pools_by_site(inv: Inventory) -> dict[str, list[Pool]]:
    """Pools with node groups, by site name (sorted)."""
    by_site: dict[str, list[Pool]] = {}
    for pool in inv.pools.values():
        if pool.groups:
            by_site.setdefault(pool.site or "(no site)", []).append(pool)
    return dict(sorted(by_site.items()))


def full_scale_nodes(pool: Pool) -> int:
    """Nodes at full scale: an inference pool's maximum, a training cluster's count."""
    return (pool.max_nodes if pool.role != "training" else pool.count) or 0


def site_draws(inv: Inventory, site_name: str, pools: list[Pool], result: RuleResult) -> list[Draw]:
    """The draw of each pool at a site (pools without a power figure go to ``result``)."""
    site = inv.sites.get(site_name)
    draws = []
    for p in pools:
        row = instance_row(p.instance_type)
        node_kw = p.node_power_kw or (row.node_power_kw if row else None)
        pue = (site.pue if site and site.pue else None) or _pool_pue(p)
        if node_kw is None or pue is None:
            missing = "node power" if node_kw is None else "PUE"
            result.add(f"{site_name}: {p.name} declares no {missing} and the catalog has none for "
                       f"{p.instance_type or 'its instance type'}; its draw cannot be checked", p.urn, p.workload)
            continue
        draws.append(Draw(p, full_scale_nodes(p), node_kw, pue))
    return draws


def check_power_within_envelope(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """Per site, nodes at full scale × node power × PUE stays within the site's envelope."""
    result = RuleResult()
    max_util = float(config.get("max_utilization") or 1.0)
    for site_name, pools in pools_by_site(inv).items():
        site = inv.sites.get(site_name)
        if has_unknown(pools, result) | _site_unknown(site, result, "power_mw", "pue"):
            continue
        draws = site_draws(inv, site_name, pools, result)
        draw_mw = sum(d.kw for d in draws) / 1000.0
        if site is None or site.power_mw is None:
            result.add(f"{site_name}: {_power(draw_mw)} of GPU nodes at full scale, but the stack declares no power "
                       "envelope for the site (its SiteNetwork has no power_mw); the draw cannot be checked",
                       site.urn if site else pools[0].urn)
            continue
        allowed = site.power_mw * max_util
        if draw_mw <= allowed + 1e-9 or not draws:
            continue
        over_kw = (draw_mw - allowed) * 1000.0
        big = max(draws, key=lambda d: d.node_kw * d.pue)
        nodes_over = math.ceil(round(over_kw / (big.node_kw * big.pue), 9))
        pools_text = ", ".join(f"{d.pool.name} {_power(d.kw / 1000)} ({d.nodes} nodes)" for d in draws)
        limit = f"the {site.power_mw:g} MW envelope" + (f" at {max_util:.0%}" if max_util < 1 else "")
        result.add(f"{site_name}: {_power(draw_mw)} at full scale exceeds {limit} by {_power(over_kw / 1000)} "
                   f"(about {nodes_over} {big.pool.instance_type} nodes too many); pools: {pools_text}",
                   site.urn or pools[0].urn)
    return result


def _site_unknown(site: Site | None, result: RuleResult, *keys: str) -> bool:
    """Record which of the site's deciding values ``keys`` are unknown; True when one is."""
    found = [site.unknown[k] for k in keys if site is not None and k in site.unknown]
    result.unknown += found
    return bool(found)


def _pool_pue(pool: Pool) -> float | None:
    return as_number(pick(pool.component.props, "pue")) if pool.component else None


# --- model-fits-memory -----------------------------------------------------------------------------


def check_model_fits_memory(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """Each inference pool's GPUs per replica hold the weights and the KV cache it declares."""
    result = RuleResult()
    floors = config.get("floors") or {}
    for pool in inv.pools.values():
        if pool.role != "inference" or not (pool.groups or pool.component):
            continue
        row = row_for([pool], result, "memory fit")
        if row is None:
            continue
        for source in _sources(pool.workload, "inference", [pool], floors, result):
            try:
                used, fit = memory_fit(source, row)
            except DemandError as exc:
                result.add(str(exc), pool.urn, pool.workload)
                continue
            usable = used.gpus_per_replica * used.usable_gb_per_gpu
            if usable + 1e-9 >= used.required_gb:
                continue
            hint = (f"{fit.gpus_per_replica} GPUs per replica fit" if fit.fits
                    else f"no replica of up to {fit.gpus_per_replica} {row.gpu} fits")
            result.add(
                f"{pool.name}: {used.gpus_per_replica} × {row.gpu} per replica hold {usable:,.0f} GB usable; "
                f"weights {used.weights_gb:,.0f} GB + KV cache {used.kv_cache_gb:,.0f} GB need "
                f"{used.required_gb:,.0f} GB ({used.required_gb - usable:,.0f} GB short; {hint}); demand "
                f"{source.source}", pool.urn, pool.workload)
    return result


# --- gpu-quota-respected ---------------------------------------------------------------------------


def requested_gpus(inv: Inventory, result: RuleResult,
                   sites: Collection[str] | None = None) -> dict[tuple[str, str], tuple[int, list[Pool]]]:
    """GPUs at full scale by (site, GPU model), with the pools asking for them, at every site or at
    ``sites`` (a pool with an unknown deciding value is left out and recorded in ``result``)."""
    requested: dict[tuple[str, str], tuple[int, list[Pool]]] = {}
    for pool in inv.pools.values():
        if not pool.groups or (sites is not None and pool.site not in sites):
            continue
        if has_unknown([pool], result):
            continue
        row = instance_row(pool.instance_type)
        gpn = row.gpus if row else pool.gpus_per_node
        known = gpu_model(pool.gpu)
        model = row.gpu if row else (known.name if known else pool.gpu)
        if not gpn or not model:
            continue
        nodes = full_scale_nodes(pool)
        total, pools = requested.get((pool.site, model), (0, []))
        requested[(pool.site, model)] = (total + nodes * gpn, [*pools, pool])
    return requested


def check_gpu_quota(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """GPUs requested per site and model stay within the quota the stack (or the config) declares."""
    result = RuleResult()
    overrides = config.get("quota_gpus") or {}
    for site_name in sorted(set(overrides) - set(inv.sites)):
        # Like a floor for a workload the stack lacks: a quota for a site it lacks is a mistake
        # (a renamed or removed site) that would otherwise leave the real site unchecked.
        result.add(f"{site_name}: the policy config sets a GPU quota, but the stack has no such site "
                   f"(its sites: {', '.join(sorted(inv.sites)) or 'none'})", "")
    requested = requested_gpus(inv, result)
    for (site_name, model), (gpus, pools) in sorted(requested.items()):
        site = inv.sites.get(site_name)
        if site_name not in overrides and _site_unknown(site, result, "quota_gpus"):
            continue
        quotas = overrides.get(site_name) if site_name in overrides else (site.quota_gpus if site else {})
        if not quotas:
            continue  # nothing declared for the site: preflight checks the live quota
        quota = next((int(v) for k, v in quotas.items() if k.lower() == model.lower()), None)
        urn = site.urn if site and site.urn else pools[0].urn
        if quota is None:
            result.add(f"{site_name}: {gpus:,} {model} requested, but the site declares no {model} quota "
                       f"(it declares {', '.join(sorted(quotas))})", urn)
        elif gpus > quota:
            result.add(f"{site_name}: {gpus:,} {model} requested at full scale, the quota is {quota:,} "
                       f"({gpus - quota:,} {model} over); pools: "
                       + ", ".join(p.name for p in pools), urn)
    return result


def _check_runway(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    from gpufleet.policy.runway_check import check_runway_covers_lead_time  # it builds on the helpers above

    return check_runway_covers_lead_time(inv, config)


def _check_shared_sites(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    from gpufleet.policy.shared import check_shared_site_limits  # it builds on the helpers above

    return check_shared_site_limits(inv, config)


def _check_replicas(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    from gpufleet.policy.keda import check_replicas_fit_node_pools  # it builds on the helpers above

    return check_replicas_fit_node_pools(inv, config)


def _check_spot_floor(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    from gpufleet.policy.spot import check_on_demand_floor_covers_peak  # it builds on the helpers above

    return check_on_demand_floor_covers_peak(inv, config)


RULES: dict[str, Rule] = {
    "capacity-covers-demand": check_capacity_covers_demand,
    "survives-zone-loss": check_survives_zone_loss,
    "warm-capacity-covers-boot-time": check_warm_capacity,
    "training-fabric-complete": check_training_fabric,
    "power-within-envelope": check_power_within_envelope,
    "model-fits-memory": check_model_fits_memory,
    "gpu-quota-respected": check_gpu_quota,
    "runway-covers-lead-time": _check_runway,
    "shared-site-limits": _check_shared_sites,
    "replicas-fit-node-pools": _check_replicas,
    "on-demand-floor-covers-peak": _check_spot_floor,
}
"""Rule function of each policy (``policies-ran-cleanly`` has none: the pack runs it)."""


__all__ = [
    "RULES",
    "Finding",
    "RuleResult",
    "check_capacity_covers_demand",
    "check_gpu_quota",
    "requested_gpus",
    "check_model_fits_memory",
    "check_power_within_envelope",
    "check_survives_zone_loss",
    "check_training_fabric",
    "check_warm_capacity",
]

"""The replay: a service's demand history, month by month, under one ordering strategy.

Pure: no I/O, no Pulumi, no placement solver. Each re-plan plans the service as ``gpufleet plan``
does, with the same core functions, on the instance type the stack's plan chose (one
:func:`~gpufleet.plan.build_plan` at the start gives the type, its tokens/s per node, its price and
the zones the service spreads over): :func:`gpufleet.sizing.size_inference` at the quantile the
strategy plans at, at the plan's own GPUs per replica (:func:`gpufleet.plan.service_memory`, over
the service's candidate instance types, not only the one placed), then the zone-loss margin
(:func:`gpufleet.sizing.nodes_surviving_losses` over the zones
:func:`gpufleet.sizing.zone_margin_sites` counts, as the plan does, and, with
``survive_site_losses``, enough nodes that :func:`gpufleet.sizing.nodes_after_losses` of them still
carries the sized nodes). Forecasts come
from :func:`gpufleet.forecast.fit_history`, runways from :func:`gpufleet.runway.runway_days` over
the capacity kept after the declared losses. Nothing here re-derives a formula.

The model, per service and strategy:

* the replay starts ``warmup_months`` after the first history point and re-plans at the same date
  of every month after that, with what was *known then* (the points dated before it), through the
  service's own forecast method: a ``history:`` service re-fits the history so far (its growth at a
  quantile is the fit's); a service with declared ``forecast`` quantiles (or a scalar
  ``growth_per_month``) keeps its declared growth, and its peak is the last peak observed;
* at the start the fleet is what the strategy plans then, already serving;
* at each re-plan the strategy computes a target node count (loss margin included); when the
  nodes installed plus those on order fall short of it, the difference is ordered and lands
  ``lead_time_days`` later; nothing is ever returned (procured capacity stays);
* between re-plans every day is judged: the day's demand is the peak of the history point that
  covers it (a point covers the days up to the next point; the last one as long as the gap before
  it); the day is *short* when that peak exceeds installed nodes × tokens/s per node (no zone
  fails in the replay), and *short after losses* when it exceeds the nodes kept after the declared
  zone and site losses × tokens/s per node (the day a declared loss would have left demand unserved);
* the declared ``scenarios`` do not change the plan (as in ``gpufleet plan``); each re-plan records
  the runway under each of them of the capacity installed and on order after its order, as
  ``gpufleet runway`` would have shown it then, and counts the re-plans at which one of them runs
  out within the lead time.

Strategies: ``point`` plans each re-plan at the p50 (the point forecast); ``runway`` plans at the
stack's ``plan_confidence``, as ``gpufleet plan`` does, and, like the ``runway-covers-lead-time``
policy at its own confidence (p90 by default), orders whenever the runway of the capacity installed
and on order, after losses, is shorter than the lead time plus the margin.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpufleet.forecast import fit_history, growth_at, horizon_months
from gpufleet.runway import runway_days
from gpufleet.sizing import LossPool, MemoryFit, nodes_after_losses, nodes_surviving_losses, size_inference
from gpufleet.spec import InferenceSpec

POINT_QUANTILE = "p50"
"""The point forecast of a history fit."""
PLAN_CONFIDENCE = "plan_confidence"
"""A strategy's quantile that is the stack's own ``plan_confidence`` (resolved by the report)."""


@dataclass(frozen=True)
class Strategy:
    """How a re-plan decides what to order.

    Attributes:
        name: ``point`` or ``runway``.
        confidence: the quantile the re-plan sizes to (:data:`PLAN_CONFIDENCE`: the stack's own,
            until :meth:`resolved`).
        margin_days: with the runway policy: the runway must be at least lead time + this; None
            for a strategy without the policy.
        policy_confidence: with the runway policy: the quantile the policy judges the runway at.
    """

    name: str
    confidence: str
    margin_days: float | None = None
    policy_confidence: str | None = None

    def resolved(self, plan_confidence: str) -> Strategy:
        """This strategy with :data:`PLAN_CONFIDENCE` replaced by the stack's ``plan_confidence``."""
        if self.confidence != PLAN_CONFIDENCE:
            return self
        return Strategy(self.name, plan_confidence, self.margin_days, self.policy_confidence)

    @property
    def quantiles(self) -> tuple[str, ...]:
        """The quantiles a re-plan needs the growth at: the plan's, then the policy's."""
        policy = self.policy_confidence if self.margin_days is not None else None
        if policy is None or policy == self.confidence:
            return (self.confidence,)
        return self.confidence, policy

    def describe(self) -> str:
        if self.margin_days is None:
            return f"plan at {self.confidence} (the point forecast)"
        return (f"plan at {self.confidence} + runway-covers-lead-time ({self.policy_confidence or self.confidence}, "
                f"margin {self.margin_days:g} days)")


def strategies(confidence: str = "p90", margin_days: float = 30.0) -> tuple[Strategy, Strategy]:
    """The two strategies the backtest compares: the point forecast, and the stack's own plan
    (at its ``plan_confidence``) with the runway policy at ``confidence``."""
    return (Strategy("point", POINT_QUANTILE),
            Strategy("runway", PLAN_CONFIDENCE, margin_days, policy_confidence=confidence))


@dataclass(frozen=True)
class ServiceFacts:
    """What a re-plan needs of one service: its declared load and forecast, and the node the plan
    runs it on."""

    name: str
    service: InferenceSpec
    fits_history: bool
    """True: the service forecasts from a ``history:`` (re-fitted at each re-plan); False: from its
    declared ``forecast`` quantiles or scalar growth."""
    instance_type: str
    gpus_per_node: int
    memory: MemoryFit
    """The plan's memory fit (:func:`gpufleet.plan.service_memory`): its GPUs per replica."""
    tokens_per_s_per_replica: float
    tokens_per_s_per_node: float
    lead_time_days: float
    horizon_days: float
    headroom: float
    boot_minutes: float
    demand_ramp_per_minute: float
    usd_per_node_hour: float | None
    zones: tuple[tuple[str, str | None, str], ...] = ()
    """The zones the plan spreads the service over: (site, the site's ``failure_domain``, zone)."""
    zones_per_site: int = 1
    """The zones the plan's zone-loss margin counts (:func:`gpufleet.sizing.zone_margin_sites`: the
    fewest of an allowed site on a cloud of its candidate instance types, placed on or not)."""
    zone_losses: int = 0
    site_losses: int = 0
    scenarios: tuple[tuple[str, float], ...] = ()
    """The declared scenarios: (name, monthly growth)."""
    _kept: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    def forecast(self, known: Sequence[tuple[dt.date, float]],
                 quantiles: Sequence[str]) -> tuple[float, dict[str, float]]:
        """(peak tokens/s, monthly growth at each of ``quantiles``) from the points ``known`` at a re-plan."""
        if self.fits_history:
            fit = fit_history(known, list(quantiles),
                              horizon_months=horizon_months(self.lead_time_days, self.horizon_days))
            return fit.peak_tokens_per_s, {q: fit.growth_per_month(q) for q in quantiles}
        return known[-1][1], {q: growth_at(self.service, q) for q in quantiles}

    def to_place(self, nodes: int) -> int:
        """Nodes the plan places so that ``nodes`` survive the declared losses: the zone margin as
        :func:`gpufleet.plan.build_plan` sizes it (:func:`nodes_surviving_losses`), and with site
        losses the fewest nodes whose :meth:`after_losses` still holds ``nodes``."""
        placed = nodes_surviving_losses(nodes, self.zones_per_site, self.zone_losses)
        if not self.site_losses or self.after_losses(placed) >= nodes:
            return placed
        lo, hi = placed, max(placed, nodes * len(self.zones) + len(self.zones))
        while lo < hi:  # after_losses never falls as nodes are added: the fewest that hold ``nodes``
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if self.after_losses(mid) < nodes else (lo, mid)
        return lo

    def after_losses(self, nodes: int) -> int:
        """Nodes left of ``nodes`` (spread evenly over :attr:`zones`) after the declared losses
        (:func:`nodes_after_losses`, as the runway report and the pack count them)."""
        if not (self.zone_losses or self.site_losses) or not self.zones:
            return nodes
        kept = self._kept.get(nodes)
        if kept is None:
            kept = self._kept[nodes] = nodes_after_losses(self._spread(nodes), zone_losses=self.zone_losses,
                                                          site_losses=self.site_losses)
        return kept

    def _spread(self, nodes: int) -> list[LossPool]:
        each, extra = divmod(nodes, len(self.zones))
        by_site: dict[tuple[str, str | None], dict[str, int]] = {}
        for i, (site, domain, zone) in enumerate(self.zones):
            by_site.setdefault((site, domain), {})[zone] = each + (1 if i < extra else 0)
        return [(site, domain, counts, sum(counts.values())) for (site, domain), counts in by_site.items()]

    def nodes_for(self, peak_tokens_per_s: float, growth_per_month: float, days: float) -> int:
        """Nodes that carry ``peak`` grown for ``lead_time_days`` + ``days``, with headroom."""
        return size_inference(
            memory=self.memory, gpus_per_node=self.gpus_per_node,
            tokens_per_s_per_replica=self.tokens_per_s_per_replica, peak_tokens_per_s=peak_tokens_per_s,
            growth_per_month=growth_per_month, lead_time_days=self.lead_time_days, horizon_days=days,
            headroom=self.headroom, boot_minutes=self.boot_minutes,
            demand_ramp_per_minute=self.demand_ramp_per_minute, instance_type=self.instance_type,
        ).nodes


@dataclass(frozen=True)
class Order:
    """Nodes ordered at a re-plan, and when they serve."""

    ordered_on: dt.date
    nodes: int
    lands_on: dt.date
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"ordered_on": self.ordered_on.isoformat(), "nodes": self.nodes,
                "lands_on": self.lands_on.isoformat(), "reason": self.reason}


@dataclass(frozen=True)
class Replan:
    """One month's re-plan: what the fit said and what the strategy decided."""

    on: dt.date
    points: int
    peak_tokens_per_s: float
    growth_per_month: float
    target_nodes: int
    installed_nodes: int
    on_order_nodes: int
    runway_days: float | None
    """The runway at the policy's confidence of the nodes installed and on order after losses, before ordering."""
    ordered_nodes: int
    scenario_runway_days: dict[str, float] = field(default_factory=dict)
    """Per declared scenario: the runway of the nodes installed and on order after losses, after ordering."""

    def to_json(self) -> dict[str, Any]:
        return {"on": self.on.isoformat(), "points": self.points, "peak_tokens_per_s": round(self.peak_tokens_per_s, 3),
                "growth_per_month": round(self.growth_per_month, 6), "target_nodes": self.target_nodes,
                "installed_nodes": self.installed_nodes, "on_order_nodes": self.on_order_nodes,
                "runway_days": _days(self.runway_days), "ordered_nodes": self.ordered_nodes,
                "scenario_runway_days": {n: _days(d) for n, d in self.scenario_runway_days.items()}}


@dataclass
class Outcome:
    """One strategy's replay of one service: what it ordered and how the days went."""

    strategy: Strategy
    start: dt.date
    end: dt.date
    initial_nodes: int = 0
    final_nodes: int = 0
    days: int = 0
    days_short: int = 0
    days_short_after_losses: int = 0
    """Days whose peak exceeds the nodes kept after the declared zone and site losses."""
    scenario_short_replans: int = 0
    """Re-plans after which a declared scenario's runway was shorter than the lead time."""
    first_short_on: dt.date | None = None
    longest_short_run_days: int = 0
    unserved_token_hours: float = 0.0
    """Σ over short days of (peak demand − capacity) tokens/s × 24 h."""
    provisioned_gpu_hours: float = 0.0
    over_provisioned_gpu_hours: float = 0.0
    """Σ over days of the GPUs installed beyond what the day's peak needs with headroom × 24 h."""
    usd: float | None = None
    orders: list[Order] = field(default_factory=list)
    replans: list[Replan] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.name,
            "confidence": self.strategy.confidence,
            "margin_days": self.strategy.margin_days,
            "policy_confidence": self.strategy.policy_confidence,
            "description": self.strategy.describe(),
            "initial_nodes": self.initial_nodes,
            "final_nodes": self.final_nodes,
            "days": self.days,
            "days_short": self.days_short,
            "days_short_after_losses": self.days_short_after_losses,
            "scenario_short_replans": self.scenario_short_replans,
            "first_short_on": self.first_short_on.isoformat() if self.first_short_on else None,
            "longest_short_run_days": self.longest_short_run_days,
            "unserved_token_hours": round(self.unserved_token_hours, 3),
            "provisioned_gpu_hours": round(self.provisioned_gpu_hours, 3),
            "over_provisioned_gpu_hours": round(self.over_provisioned_gpu_hours, 3),
            "usd": None if self.usd is None else round(self.usd, 2),
            "orders": [o.to_json() for o in self.orders],
            "replans": [r.to_json() for r in self.replans],
        }


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months later (clipped to the month's last day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def demand_by_day(points: Sequence[tuple[dt.date, float]]) -> dict[dt.date, float]:
    """Each day's peak: a point covers the days up to the next one, the last as long as the gap before it."""
    out: dict[dt.date, float] = {}
    for i, (day, peak) in enumerate(points):
        if i + 1 < len(points):
            span = (points[i + 1][0] - day).days
        else:
            span = (day - points[i - 1][0]).days if i > 0 else 1
        for d in range(span):
            out[day + dt.timedelta(days=d)] = peak
    return out


def nodes_at_peak(facts: ServiceFacts, peaks: Iterable[float]) -> dict[float, int]:
    """The nodes each peak needs with its headroom, its loss margin and no growth (what a day is
    over-provisioned against)."""
    return {peak: facts.to_place(facts.nodes_for(peak, 0.0, 0.0)) for peak in set(peaks)}


def replay(facts: ServiceFacts, points: Sequence[tuple[dt.date, float]], strategy: Strategy, *,
           warmup_months: int, needed: Mapping[float, int] | None = None) -> Outcome:
    """Replay one service's history (sorted, dates unique) under ``strategy``.

    ``needed``: :func:`nodes_at_peak` of the history's peaks, when the caller shares it between
    strategies (computed here otherwise).
    """
    demand = demand_by_day(points)
    needed = needed if needed is not None else nodes_at_peak(facts, demand.values())
    start = add_months(points[0][0], warmup_months)
    end = max(demand)
    outcome = Outcome(strategy, start, end)
    replans = []
    month = 0
    while (on := add_months(start, month)) <= end:
        replans.append(on)
        month += 1
    installed = 0
    pending: list[Order] = []
    run = 0
    day = start
    while day <= end:
        if replans and day == replans[0]:
            replans.pop(0)
            installed = _replan(facts, points, strategy, outcome, day, installed, pending)
        landed = [o for o in pending if o.lands_on <= day]
        installed += sum(o.nodes for o in landed)
        pending = [o for o in pending if o.lands_on > day]
        run = _judge_day(facts, outcome, day, demand[day], needed[demand[day]], installed, run)
        day += dt.timedelta(days=1)
    outcome.final_nodes = installed
    if facts.usd_per_node_hour is not None:
        outcome.usd = outcome.provisioned_gpu_hours / facts.gpus_per_node * facts.usd_per_node_hour
    return outcome


def _replan(facts: ServiceFacts, points: Sequence[tuple[dt.date, float]], strategy: Strategy, outcome: Outcome,
            day: dt.date, installed: int, pending: list[Order]) -> int:
    """Fit what was known on ``day``, decide, record; returns the installed nodes (the first re-plan
    installs the starting fleet)."""
    known = points[:bisect.bisect_left(points, (day,))]  # the points dated before the re-plan
    peak, growth = facts.forecast(known, strategy.quantiles)
    target = facts.to_place(facts.nodes_for(peak, growth[strategy.confidence], facts.horizon_days))
    reason = f"plan at {strategy.confidence}"
    on_order = sum(o.nodes for o in pending)
    runway = None
    if strategy.margin_days is not None:
        policy = strategy.policy_confidence or strategy.confidence
        runway = _runway(facts, installed + on_order, peak, growth[policy])
        needed = facts.lead_time_days + strategy.margin_days
        if runway < needed:
            floor = facts.to_place(facts.nodes_for(peak, growth[policy], strategy.margin_days))
            if floor > target:
                target = floor
            reason = (f"runway {runway:.0f} days at {policy} < lead time {facts.lead_time_days:g} "
                      f"+ margin {strategy.margin_days:g}")
    first = not outcome.replans  # the starting fleet, already serving
    order = 0 if first else max(0, target - installed - on_order)
    scenarios = {name: _runway(facts, (target if first else installed + on_order + order), peak, g)
                 for name, g in facts.scenarios}
    if any(days < facts.lead_time_days for days in scenarios.values()):
        outcome.scenario_short_replans += 1
    if first:
        outcome.initial_nodes = target
        outcome.replans.append(Replan(day, len(known), peak, growth[strategy.confidence], target, 0, 0, runway, 0,
                                      scenarios))
        return target
    if order:
        o = Order(day, order, day + dt.timedelta(days=math.ceil(facts.lead_time_days)), reason)
        pending.append(o)
        outcome.orders.append(o)
    outcome.replans.append(Replan(day, len(known), peak, growth[strategy.confidence], target, installed, on_order,
                                  runway, order, scenarios))
    return installed


def _runway(facts: ServiceFacts, nodes: int, peak: float, growth: float) -> float:
    """The runway of ``nodes`` (after the declared losses) from ``peak`` at ``growth``."""
    return runway_days(capacity_tokens_per_s=facts.after_losses(nodes) * facts.tokens_per_s_per_node,
                       peak_tokens_per_s=peak, headroom=facts.headroom, growth_per_month=growth)


def _judge_day(facts: ServiceFacts, outcome: Outcome, day: dt.date, peak: float, needed: int, installed: int,
               run: int) -> int:
    """Count one day; returns the current run of short days."""
    capacity = installed * facts.tokens_per_s_per_node
    outcome.days += 1
    outcome.provisioned_gpu_hours += installed * facts.gpus_per_node * 24.0
    outcome.over_provisioned_gpu_hours += max(0, installed - needed) * facts.gpus_per_node * 24.0
    if peak > facts.after_losses(installed) * facts.tokens_per_s_per_node:
        outcome.days_short_after_losses += 1
    if peak <= capacity:
        return 0
    outcome.days_short += 1
    outcome.first_short_on = outcome.first_short_on or day
    outcome.unserved_token_hours += (peak - capacity) * 24.0
    run += 1
    outcome.longest_short_run_days = max(outcome.longest_short_run_days, run)
    return run


def _days(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else round(value, 3)


__all__ = ["PLAN_CONFIDENCE", "POINT_QUANTILE", "Order", "Outcome", "Replan", "ServiceFacts", "Strategy", "add_months",
           "demand_by_day", "nodes_at_peak", "replay", "strategies"]

"""Runway: how long the planned capacity lasts under the forecast's range, and when to order more.

Pure: no I/O, no Pulumi. ``gpufleet runway`` renders :func:`runway_report`; the pack's runway
policy and ``gpufleet backtest`` call :func:`runway_days`.

Definitions (``docs/runway.md``), for an inference service with today's peak P, headroom h, monthly
growth g (at a quantile or in a scenario) and capacity C::

    C            = tokens/s the provisioned maximum serves after the declared zone and site losses
                   (the worst losses, as the pack's survives-zone-loss rule counts them)
    runway_days  = ln(C / (P · (1 + h))) / ln(1 + g) · 30.4375
                   (the first moment P · (1 + h) · (1 + g)^(t / 30.4375 days) exceeds C;
                   0 when it already does, infinite when g = 0 and C suffices)
    runs_out_on  = as_of + ⌊runway_days⌋
    order_by     = runs_out_on − lead_time_days
    status       = ok          order_by after as_of + 30 days
                   order_now   order_by within 30 days, but runs_out_on after as_of + lead time
                   short       it runs out before capacity ordered today could land

A training run's slack is its deadline minus the days it takes at the planned size.

A site's power (quota) runway is the first day its facility draw (GPUs of a model) would pass the
envelope (quota) if every service on it grows as forecast at the plan's confidence, and each
service's pools grow in proportion to its demand once that demand passes the service's capacity
(the plan's shape, zones and loss margins kept; nodes counted fractionally); training pools stay
as planned. No limit reached within :data:`MAX_RUNWAY_DAYS` is reported as infinite (JSON null).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gpufleet.chart import Band, ChartData, Series
from gpufleet.errors import EXIT_BLOCKED, EXIT_OK, Issue, SpecError
from gpufleet.forecast import growth_at, quantiles_of
from gpufleet.plan import FleetPlan, PoolPlan
from gpufleet.sizing import DAYS_PER_MONTH, nodes_after_losses
from gpufleet.spec import FleetSpec, InferenceSpec

ORDER_WINDOW_DAYS = 30
"""An order due within this many days of as-of is due now (``order_now``)."""
MAX_RUNWAY_DAYS = 36_525.0
"""A century: a runway longer than this is reported as infinite (JSON null), so dates stay dates."""

Status = Literal["ok", "order_now", "short"]


def runway_days(*, capacity_tokens_per_s: float, peak_tokens_per_s: float, headroom: float,
                growth_per_month: float) -> float:
    """Days until peak · (1 + headroom) · (1 + growth)^(days / 30.4375) first exceeds capacity.

    Returns:
        0.0 when demand with headroom already exceeds the capacity; ``math.inf`` when it never
        does (growth ≤ 0 and enough capacity).

    Raises:
        ValueError: an input is NaN or infinite, the peak is not positive, headroom or capacity
            is negative, or growth is −100 % or less.
    """
    values = (capacity_tokens_per_s, peak_tokens_per_s, headroom, growth_per_month)
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"runway inputs must be finite, got {values}")
    if peak_tokens_per_s <= 0 or headroom < 0 or capacity_tokens_per_s < 0 or growth_per_month <= -1:
        raise ValueError("runway needs peak > 0, headroom >= 0, capacity >= 0 and growth > -1")
    need = peak_tokens_per_s * (1.0 + headroom)
    if need >= capacity_tokens_per_s:
        return 0.0
    if growth_per_month <= 0:
        return math.inf
    return math.log(capacity_tokens_per_s / need) / math.log1p(growth_per_month) * DAYS_PER_MONTH


def capacity_after_losses_tokens_per_s(plan: FleetPlan, spec: FleetSpec, service: str) -> float:
    """Tokens/s a service's provisioned maximum serves after its declared losses: the nodes left
    when its ``survive_zone_losses`` largest zones, and (separately) its ``survive_site_losses``
    largest failure domains, fail (the smaller of the two), times tokens/s per node."""
    work = next(w for w in spec.inference if w.name == service)
    return _capacity(plan.pools_of(service), work, spec)


def _capacity(of_service: Sequence[PoolPlan], work: InferenceSpec, spec: FleetSpec) -> float:
    pools = [p for p in of_service if p.role == "inference"]
    if not pools:
        return 0.0
    left = nodes_after_losses(((p.site, spec.site(p.site).failure_domain, p.nodes_by_zone, p.nodes) for p in pools),
                              zone_losses=work.survive_zone_losses, site_losses=work.survive_site_losses)
    return left * pools[0].tokens_per_s_per_node


# --- the report ------------------------------------------------------------------------------------


def _days(value: float) -> float | None:
    return None if not math.isfinite(value) or value > MAX_RUNWAY_DAYS else round(value, 1)


def _iso(day: datetime.date | None) -> str | None:
    return None if day is None else day.isoformat()


@dataclass(frozen=True)
class ForecastRunway:
    """The runway of one service under one growth: a quantile (``p90``) or a named scenario."""

    name: str
    growth_per_month: float
    runway_days: float  # exact; math.inf when it never runs out
    runs_out_on: datetime.date | None
    order_by: datetime.date | None
    scenario: bool = False  # a named scenario, not a quantile

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "growth_per_month": round(self.growth_per_month, 6),
                "runway_days": _days(self.runway_days),
                "runs_out_on": _iso(self.runs_out_on), "order_by": _iso(self.order_by)}


@dataclass(frozen=True)
class ServiceRunway:
    """An inference service's runway under every quantile and scenario, and its status at the plan's
    confidence."""

    name: str
    capacity_tokens_per_s: float
    peak_tokens_per_s: float
    headroom: float
    lead_time_days: float
    confidence: ForecastRunway
    scenarios: tuple[ForecastRunway, ...]
    status: Status

    @property
    def runway_days(self) -> float:
        return self.confidence.runway_days

    @property
    def order_by(self) -> datetime.date | None:
        return self.confidence.order_by

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": "inference", "capacity_tokens_per_s": round(self.capacity_tokens_per_s, 3),
                "peak_tokens_per_s": self.peak_tokens_per_s, "headroom": self.headroom,
                "lead_time_days": self.lead_time_days, "scenarios": [s.to_dict() for s in self.scenarios],
                "growth_per_month": round(self.confidence.growth_per_month, 6), "runway_days": _days(self.runway_days),
                "runs_out_on": _iso(self.confidence.runs_out_on), "order_by": _iso(self.order_by),
                "status": self.status}


@dataclass(frozen=True)
class TrainingRunway:
    """A training run's slack against its deadline at the planned size."""

    name: str
    deadline_days: float
    days_at_planned_size: float
    status: Status

    @property
    def slack_days(self) -> float:
        return self.deadline_days - self.days_at_planned_size

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": "training", "deadline_days": self.deadline_days,
                "days_at_planned_size": round(self.days_at_planned_size, 3), "slack_days": round(self.slack_days, 3),
                "status": self.status}


@dataclass(frozen=True)
class SiteRunway:
    """Days until a site's power envelope / GPU quota is passed as its services grow (inf: never;
    quota: inf also when no GPU model on the site has a quota)."""

    name: str
    power_runway_days: float
    quota_runway_days: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "power_runway_days": _days(self.power_runway_days),
                "quota_runway_days": _days(self.quota_runway_days)}


@dataclass(frozen=True)
class RunwayReport:
    """``gpufleet runway``: every service's and site's runway from ``as_of`` at ``confidence``."""

    as_of: datetime.date
    confidence: str
    services: tuple[ServiceRunway, ...]
    training: tuple[TrainingRunway, ...]
    sites: tuple[SiteRunway, ...]

    @property
    def workloads(self) -> tuple[ServiceRunway | TrainingRunway, ...]:
        return (*self.services, *self.training)

    @property
    def exit_code(self) -> int:
        """0 when every workload is ``ok``, 3 when any is ``order_now`` or ``short``."""
        return EXIT_OK if all(w.status == "ok" for w in self.workloads) else EXIT_BLOCKED

    def to_dict(self) -> dict[str, Any]:
        """The ``gpufleet runway --json`` contract (days and dates of an infinite runway: null)."""
        return {"as_of": self.as_of.isoformat(), "confidence": self.confidence,
                "workloads": [w.to_dict() for w in self.workloads], "sites": [s.to_dict() for s in self.sites]}


def forecast_runway(name: str, growth: float, *, capacity_tokens_per_s: float, peak_tokens_per_s: float,
                    headroom: float, lead_time_days: float, as_of: datetime.date,
                    scenario: bool = False) -> ForecastRunway:
    """The runway, run-out date and order-by date of one growth (a quantile's, or a ``scenario``'s)."""
    days = runway_days(capacity_tokens_per_s=capacity_tokens_per_s, peak_tokens_per_s=peak_tokens_per_s,
                       headroom=headroom, growth_per_month=growth)
    if not math.isfinite(days) or days > MAX_RUNWAY_DAYS:
        return ForecastRunway(name, growth, math.inf, None, None, scenario)
    try:
        out = as_of + datetime.timedelta(days=math.floor(days))
        order_by = out - datetime.timedelta(days=math.ceil(lead_time_days))
    except OverflowError:  # outside the calendar (years 1 .. 9999)
        return ForecastRunway(name, growth, math.inf, None, None, scenario)
    return ForecastRunway(name, growth, days, out, order_by, scenario)


def status_of(entry: ForecastRunway, *, lead_time_days: float, as_of: datetime.date) -> Status:
    """``ok``, ``order_now`` or ``short`` (see the module docstring)."""
    if entry.order_by is None or entry.runs_out_on is None:
        return "ok"
    if entry.order_by > as_of + datetime.timedelta(days=ORDER_WINDOW_DAYS):
        return "ok"
    if entry.runs_out_on > as_of + datetime.timedelta(days=math.ceil(lead_time_days)):
        return "order_now"
    return "short"


def service_runway(plan: FleetPlan, spec: FleetSpec, service: InferenceSpec, *, as_of: datetime.date,
                   confidence: str, pools: Sequence[PoolPlan] | None = None) -> ServiceRunway:
    """One service's runway under each quantile it shows and each scenario (``pools``: the plan's
    pools of the service, when the caller has them at hand)."""
    capacity = _capacity(plan.pools_of(service.name) if pools is None else pools, service, spec)
    common: dict[str, Any] = dict(capacity_tokens_per_s=capacity, peak_tokens_per_s=service.peak_tokens_per_s,
                  headroom=service.headroom, lead_time_days=service.lead_time_days, as_of=as_of)
    entries = [forecast_runway(q, growth_at(service, q), **common) for q in quantiles_of(service, confidence)]
    entries += [forecast_runway(s.name, s.growth_per_month, scenario=True, **common) for s in service.scenarios]
    at = next(e for e in entries if e.name == confidence)
    return ServiceRunway(name=service.name, capacity_tokens_per_s=capacity, peak_tokens_per_s=service.peak_tokens_per_s,
                         headroom=service.headroom, lead_time_days=service.lead_time_days, confidence=at,
                         scenarios=tuple(entries),
                         status=status_of(at, lead_time_days=service.lead_time_days, as_of=as_of))


def runway_report(plan: FleetPlan, spec: FleetSpec, *, as_of: datetime.date) -> RunwayReport:
    """Every inference service's runway, every training run's slack and every site's power and
    quota runway, from ``as_of`` at the spec's ``plan_confidence``.

    Raises:
        SpecError: a service's forecast does not cover the plan's confidence (a spec loaded with
            :func:`gpufleet.stackfile.load_stack` never has this).
    """
    confidence = spec.plan_confidence
    by_workload: dict[str, list[PoolPlan]] = {}
    for pool in plan.pools:
        by_workload.setdefault(pool.workload, []).append(pool)
    services = []
    for i, s in enumerate(spec.inference):
        try:
            services.append(service_runway(plan, spec, s, as_of=as_of, confidence=confidence,
                                           pools=by_workload.get(s.name, [])))
        except SpecError as exc:
            raise SpecError([Issue(f"fleet.inference[{i}].{x.loc}", x.message, x.hint) for x in exc.issues]) from None
    training = tuple(
        TrainingRunway(w.name, w.deadline_days, w.days_at_planned_size,
                       "ok" if w.days_at_planned_size <= w.deadline_days * (1 + 1e-9) else "short")
        for w in plan.workloads if w.role == "training")
    growth = {r.name: r for r in services}
    sites = tuple(_site_runway(plan, spec, site.name, growth) for site in spec.sites)
    return RunwayReport(as_of=as_of, confidence=confidence, services=tuple(services), training=training, sites=sites)


# --- sites -----------------------------------------------------------------------------------------


def _scale(pools: Sequence[PoolPlan], services: Mapping[str, ServiceRunway]) -> Callable[[float], np.ndarray]:
    """How many times its planned size each pool must be on day t: 1 until its service's demand (with
    headroom) passes the service's capacity, then in proportion to that demand; training pools: 1."""
    start = np.full(len(pools), -np.inf)  # ln(demand / capacity) today
    rate = np.zeros(len(pools))  # ln(1 + g) per day
    for i, p in enumerate(pools):
        s = services.get(p.workload) if p.role == "inference" else None
        if s is not None:
            need = s.peak_tokens_per_s * (1.0 + s.headroom)
            start[i] = math.log(need / s.capacity_tokens_per_s) if s.capacity_tokens_per_s > 0 else np.inf
            rate[i] = math.log1p(s.confidence.growth_per_month) / DAYS_PER_MONTH

    def scale(t: float) -> np.ndarray:
        return np.maximum(1.0, np.exp(np.minimum(700.0, start + t * rate)))
    return scale


def _site_runway(plan: FleetPlan, spec: FleetSpec, site: str, services: Mapping[str, ServiceRunway]) -> SiteRunway:
    pools: list[PoolPlan] = [p for p in plan.pools if p.site == site]
    if not pools:
        return SiteRunway(site, math.inf, math.inf)
    scale = _scale(pools, services)
    kw = np.array([p.power_kw for p in pools])

    def gpus(model: str) -> Callable[[float], float]:
        counts = np.array([p.gpus if p.gpu == model else 0 for p in pools], dtype=float)
        return lambda t: float(counts @ scale(t))

    quota_days = [_first_day(gpus(model), limit) for model, limit in spec.site(site).quota_gpus.items()
                  if any(p.gpu == model for p in pools)]
    power_days = _first_day(lambda t: float(kw @ scale(t)), spec.site(site).power_mw * 1000.0)
    return SiteRunway(site, power_days, min(quota_days, default=math.inf))


def _first_day(load: Callable[[float], float], limit: float, *, tolerance_days: float = 1e-6) -> float:
    """The first t ≥ 0 with load(t) > limit, for a non-decreasing ``load`` (inf: not within
    :data:`MAX_RUNWAY_DAYS`)."""
    if load(0.0) > limit:
        return 0.0
    if load(MAX_RUNWAY_DAYS) <= limit:
        return math.inf
    lo, hi = 0.0, MAX_RUNWAY_DAYS
    while hi - lo > tolerance_days:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if load(mid) > limit else (mid, hi)
    return hi


# --- the chart ------------------------------------------------------------------------------------

_CHART_POINTS = 241
_CHART_MAX_DAYS = 5 * 365.25


def runway_chart(report: RunwayReport) -> tuple[ChartData, ...]:
    """One panel per inference service: the demand fan (the p50–p90 band, the plan's confidence and
    each scenario as lines; demand with headroom, as the runway counts it) against the capacity
    after losses, with the order-by and run-out dates at the plan's confidence marked."""
    return tuple(_service_panel(s, report.as_of, report.confidence) for s in report.services)


def _service_panel(s: ServiceRunway, as_of: datetime.date, confidence: str) -> ChartData:
    at = s.confidence
    end = min(_CHART_MAX_DAYS, max(at.runway_days * 1.25, s.lead_time_days + 60.0, 90.0))
    grid = tuple(end * i / (_CHART_POINTS - 1) for i in range(_CHART_POINTS))
    need = s.peak_tokens_per_s * (1.0 + s.headroom)

    def curve(g: float) -> tuple[float, ...]:
        return tuple(need * math.exp(d / DAYS_PER_MONTH * math.log1p(g)) for d in grid)

    quantiles = [e for e in s.scenarios if not e.scenario]
    named = [e for e in s.scenarios if e.scenario]
    lo = next((e for e in quantiles if e.name == "p50"), quantiles[0])
    hi = next((e for e in quantiles if e.name == "p90"), quantiles[-1])
    bands: tuple[Band, ...] = ()
    if hi.growth_per_month > lo.growth_per_month:
        bands = (Band(f"forecast {lo.name}–{hi.name} ({lo.growth_per_month:.1%}–{hi.growth_per_month:.1%}/month)",
                      grid, curve(lo.growth_per_month), curve(hi.growth_per_month)),)
    series = [Series(f"forecast at {confidence}, the plan's confidence ({at.growth_per_month:.1%}/month)", grid,
                     curve(at.growth_per_month), "demand")]
    series += [Series(f"scenario {e.name} ({e.growth_per_month:.1%}/month)", grid, curve(e.growth_per_month),
                      ("scenario", "scenario-2", "scenario-3")[i % 3]) for i, e in enumerate(named)]
    series.append(Series(f"capacity after losses ({s.capacity_tokens_per_s:,.0f} tokens/s)", grid,
                         tuple(s.capacity_tokens_per_s for _ in grid), "head"))
    top = max(s.capacity_tokens_per_s, max(b.upper[-1] for b in bands) if bands else 0.0,
              series[0].values[-1]) * 1.15
    for label, day, style in (("order by", at.order_by, "order"), ("runs out", at.runs_out_on, "marker")):
        if day is not None:
            x = max(0.0, float((day - as_of).days))
            late = " (overdue)" if day < as_of else ""
            series.append(Series(f"{label} {day.isoformat()}{late}", (x, x), (0.0, top / 1.08), style))
    never = "" if at.runs_out_on is not None else f"; at {confidence} it never runs out"
    return ChartData(title=f"{s.name}: demand with {s.headroom:.0%} headroom vs capacity ({s.status}{never})",
                     y_label="tokens/s", series=tuple(series), bands=bands,
                     x_label=f"days from {as_of.isoformat()}", y_max=top)


__all__ = [
    "MAX_RUNWAY_DAYS",
    "ORDER_WINDOW_DAYS",
    "ForecastRunway",
    "RunwayReport",
    "ServiceRunway",
    "SiteRunway",
    "TrainingRunway",
    "capacity_after_losses_tokens_per_s",
    "forecast_runway",
    "runway_chart",
    "runway_days",
    "runway_report",
    "service_runway",
    "status_of",
]

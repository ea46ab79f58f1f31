"""The backtest of a stack: every inference service replayed under both strategies, side by side.

Pure apart from reading nothing: the CLI (:mod:`gpufleet.cli.backtest`) loads the stack and the
histories. :func:`run_backtest` takes the spec, its plan (for each service's instance type, tokens/s
per node, price and zones) and the histories, and returns a :class:`BacktestReport`; a strategy
planning at :data:`~gpufleet.backtest.replay.PLAN_CONFIDENCE` plans at the spec's ``plan_confidence``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpufleet.backtest.replay import Outcome, ServiceFacts, Strategy, add_months, nodes_at_peak, replay
from gpufleet.catalog import load_catalog
from gpufleet.errors import Issue, SpecError
from gpufleet.forecast import MIN_HISTORY_POINTS, growth_at
from gpufleet.plan import FleetPlan, allowed_sites, candidate_types, service_memory
from gpufleet.sizing import zone_margin_sites
from gpufleet.spec import FleetSpec, InferenceSpec

BACKTEST_SCHEMA_VERSION = 2
"""2: the runway strategy plans at the stack's ``plan_confidence`` (``confidence``) and judges the
runway at ``policy_confidence``; loss margins, ``days_short_after_losses`` and scenarios added."""
MIN_FIT_POINTS = MIN_HISTORY_POINTS
"""Points the warm-up must hold for the first fit (:data:`gpufleet.forecast.MIN_HISTORY_POINTS`)."""


@dataclass(frozen=True)
class ServiceBacktest:
    """One service: its facts and each strategy's outcome (in the order the strategies were given)."""

    facts: ServiceFacts
    outcomes: tuple[Outcome, ...]

    def outcome(self, strategy: str) -> Outcome:
        return next(o for o in self.outcomes if o.strategy.name == strategy)

    def to_json(self) -> dict[str, Any]:
        f = self.facts
        return {
            "name": f.name,
            "instance_type": f.instance_type,
            "gpus_per_node": f.gpus_per_node,
            "gpus_per_replica": f.memory.gpus_per_replica,
            "tokens_per_s_per_node": round(f.tokens_per_s_per_node, 3),
            "lead_time_days": f.lead_time_days,
            "horizon_days": f.horizon_days,
            "headroom": f.headroom,
            "survive_zone_losses": f.zone_losses,
            "survive_site_losses": f.site_losses,
            "zones": [f"{site}/{zone}" for site, _, zone in f.zones],
            "scenarios": {name: growth for name, growth in f.scenarios},
            "usd_per_node_hour": None if f.usd_per_node_hour is None else round(f.usd_per_node_hour, 4),
            "start": self.outcomes[0].start.isoformat(),
            "end": self.outcomes[0].end.isoformat(),
            "strategies": [o.to_json() for o in self.outcomes],
        }


@dataclass(frozen=True)
class BacktestReport:
    """Every service's replay; ``to_json`` is ``gpufleet backtest --json``."""

    stack: str
    warmup_months: int
    strategies: tuple[Strategy, ...]
    services: tuple[ServiceBacktest, ...]

    def totals(self) -> dict[str, dict[str, Any]]:
        """Per strategy, the sums over services of the day counts, shortfall, GPU-hours and cost."""
        out: dict[str, dict[str, Any]] = {}
        for s in self.strategies:
            outcomes = [svc.outcome(s.name) for svc in self.services]
            costs = [o.usd for o in outcomes]
            out[s.name] = {
                "days_short": sum(o.days_short for o in outcomes),
                "days_short_after_losses": sum(o.days_short_after_losses for o in outcomes),
                "unserved_token_hours": round(sum(o.unserved_token_hours for o in outcomes), 3),
                "provisioned_gpu_hours": round(sum(o.provisioned_gpu_hours for o in outcomes), 3),
                "over_provisioned_gpu_hours": round(sum(o.over_provisioned_gpu_hours for o in outcomes), 3),
                "usd": None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 2),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": BACKTEST_SCHEMA_VERSION,
            "stack": self.stack,
            "warmup_months": self.warmup_months,
            "strategies": [{"name": s.name, "confidence": s.confidence, "margin_days": s.margin_days,
                            "policy_confidence": s.policy_confidence, "description": s.describe()}
                           for s in self.strategies],
            "services": [s.to_json() for s in self.services],
            "totals": self.totals(),
        }


def service_facts(spec: InferenceSpec, plan: FleetPlan, fleet: FleetSpec) -> ServiceFacts:
    """A service's load from the spec, its node from the plan (the first of its pools), the zones
    its pools spread over, and what :func:`gpufleet.plan.build_plan` decides before placement, over
    the service's candidate instance types (:func:`gpufleet.plan.candidate_types`): its memory fit
    (:func:`gpufleet.plan.service_memory`: GPUs per replica at the smallest GPU memory of the
    candidates, a TPU's single-host slice sizes) and the zones its zone-loss margin counts
    (:func:`gpufleet.sizing.zone_margin_sites`, over the candidates' clouds)."""
    pools = [p for p in plan.pools_of(spec.name) if p.role == "inference"]
    pool = pools[0]
    zones = tuple((p.site, fleet.site(p.site).failure_domain, zone) for p in pools
                  for zone in (p.nodes_by_zone or dict.fromkeys(p.zones, 0)))
    # sized as gpufleet.plan sizes it, over where the service could run, not over the pools placed
    catalog = load_catalog()
    allowed = allowed_sites(spec, fleet)
    loc = f"fleet.inference.{spec.name}"
    candidates = candidate_types(spec, allowed, catalog, loc)
    clouds = {r.cloud for r in candidates}
    _, zones_per_site = zone_margin_sites(allowed, clouds, spec.survive_zone_losses, f"{loc}.survive_zone_losses")
    memory = service_memory(spec, candidates, catalog)
    return ServiceFacts(
        name=spec.name, service=spec, fits_history=spec.history is not None, instance_type=pool.instance_type, gpus_per_node=pool.gpus_per_node, memory=memory,
        tokens_per_s_per_replica=spec.tokens_per_s_per_replica, tokens_per_s_per_node=pool.tokens_per_s_per_node,
        lead_time_days=spec.lead_time_days, horizon_days=spec.horizon_days, headroom=spec.headroom,
        boot_minutes=spec.boot_minutes, demand_ramp_per_minute=spec.demand_ramp_per_minute,
        usd_per_node_hour=pool.usd_per_hour / pool.nodes if pool.usd_per_hour is not None and pool.nodes else None,
        zones=zones, zones_per_site=zones_per_site, zone_losses=spec.survive_zone_losses,
        site_losses=spec.survive_site_losses,
        scenarios=tuple((s.name, s.growth_per_month) for s in spec.scenarios),
    )


def run_backtest(spec: FleetSpec, plan: FleetPlan, histories: Mapping[str, Sequence[tuple[dt.date, float]]],
                 strategies: Sequence[Strategy], *, warmup_months: int) -> BacktestReport:
    """Replay every inference service's history under each strategy (one planning at
    :data:`~gpufleet.backtest.replay.PLAN_CONFIDENCE` plans at ``spec.plan_confidence``).

    Raises:
        SpecError: a history too short for the warm-up and one month of replay, or with fewer
            than :data:`MIN_FIT_POINTS` points in its warm-up.
    """
    strategies = [s.resolved(spec.plan_confidence) for s in strategies]
    issues: list[Issue] = []
    for name, points in histories.items():
        start = add_months(points[0][0], warmup_months)
        known = sum(1 for p in points if p[0] < start)
        if add_months(start, 1) > points[-1][0] or known < MIN_FIT_POINTS:
            issues.append(Issue(f"--history {name}", f"{points[0][0]} to {points[-1][0]} with {known} points in the "
                                f"{warmup_months}-month warm-up is too short to replay",
                                f"at least {MIN_FIT_POINTS} points in the warm-up and a month of history after it"))
    for i, w in enumerate(spec.inference):
        for q in sorted({q for s in strategies for q in s.quantiles}):
            if w.history is None:  # a declared forecast must reach every strategy's quantile
                try:
                    growth_at(w, q)
                except SpecError as exc:
                    issues += [Issue(f"fleet.inference[{i}].{e.loc}", f"{w.name}: {e.message}", e.hint)
                               for e in exc.issues]
    if issues:
        raise SpecError(issues)
    services = []
    for w in spec.inference:
        facts = service_facts(w, plan, spec)
        points = list(histories[w.name])
        needed = nodes_at_peak(facts, (p for _, p in points))  # shared by the strategies
        services.append(ServiceBacktest(facts, tuple(replay(facts, points, s, warmup_months=warmup_months,
                                                            needed=needed) for s in strategies)))
    return BacktestReport(plan.stack, warmup_months, tuple(strategies), tuple(services))


__all__ = ["BACKTEST_SCHEMA_VERSION", "BacktestReport", "ServiceBacktest", "run_backtest", "service_facts"]

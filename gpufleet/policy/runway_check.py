"""``runway-covers-lead-time``: each inference service can still order capacity before it runs out.

At the policy's ``confidence`` (a forecast quantile, default p90, independent of the stack's
``plan_confidence``), a service's runway is the days until its forecast peak × (1 + headroom)
outgrows the capacity it keeps after its declared zone and site losses
(:func:`gpufleet.runway.forecast_runway`, which also gives the run-out and order-by dates). The runway must be at least the service's lead time plus
``margin_days``: otherwise the capacity that would cover it cannot land in time, and the finding
names the runway, the lead time and the order-by date (the day capacity runs out minus the lead
time) counted from ``as_of`` (default ``today``, in UTC).

Capacity is read as the other capacity rules read it: the autoscalers' maximum from the cloud
resources, spread over zones and failure domains, × the tokens/s a node serves on the pool's
instance type (:func:`gpufleet.sizing.size_inference`). Growth at the quantile comes from the
service's declared forecast (:func:`gpufleet.forecast.growth_at`). Nothing is recomputed here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from gpufleet.forecast import growth_at
from gpufleet.runway import forecast_runway
from gpufleet.sizing import nodes_after_losses
from gpufleet.policy.demand import InferenceNeed
from gpufleet.policy.resources import Inventory, Pool, cannot_verify, is_unknown, pick
from gpufleet.policy.rules import (
    RuleResult,
    has_unknown,
    inference_needs,
    loss_pools,
    row_for,
    workloads_of,
)

FLOOR_SOURCE = "policy config floor"
"""The source :func:`gpufleet.policy.demand.demand_sources` gives a floor's demand."""
DECIDING_FIELDS = ("peak_tokens_per_s", "growth_per_month", "forecast", "scenarios", "lead_time_days", "headroom",
                   "tokens_per_s_per_replica", "gpus_per_replica", "survive_zone_losses", "survive_site_losses")
"""Demand fields the runway depends on: one unknown during a preview is reported, never defaulted."""


def check_runway_covers_lead_time(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """Each inference service's runway at ``confidence`` covers its lead time plus ``margin_days``."""
    result = RuleResult()
    floors = config.get("floors") or {}
    confidence = str(config.get("confidence") or "p90")
    margin = float(config.get("margin_days", 30))
    as_of = policy_as_of(config.get("as_of"))
    for workload, _role, pools in workloads_of(inv, floors, "inference"):
        if not pools:
            continue  # capacity-covers-demand reports a floor with no capacity
        row = row_for(pools, result, "its runway")
        if row is None or has_unknown(pools, result) or _demand_unknown(pools, result):
            continue
        for need in inference_needs(workload, pools, row, floors, result):
            _check_need(inv, workload, pools, need, floors.get(workload) or {}, confidence, margin, as_of, result)
    return result


def policy_as_of(value: Any) -> dt.date:
    """The policy config's ``as_of`` (YYYY-MM-DD); today in UTC for ``today`` or none.

    Raises:
        ValueError: not a calendar date (the pack reports it as an invalid policy config).
    """
    if value is None or value == "today":
        return dt.datetime.now(dt.timezone.utc).date()
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"its policy config is invalid: as_of: {value!r} is not a calendar date "
                         "(allowed: YYYY-MM-DD)") from None


def _demand_unknown(pools: list[Pool], result: RuleResult) -> bool:
    """Record each deciding demand field that is unknown during this preview; True when one is."""
    found = [cannot_verify(p.name, "demand") for p in pools
             if p.component is not None and is_unknown(pick(p.component.props, "demand"))]
    found += [cannot_verify(p.name, f"demand.{name}") for p in pools for name in DECIDING_FIELDS
              if _holds_unknown(pick(p.demand, name))]
    result.unknown += found
    return bool(found)


def _holds_unknown(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_holds_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_unknown(v) for v in value)
    return is_unknown(value)


def _check_need(inv: Inventory, workload: str, pools: list[Pool], need: InferenceNeed, floor: Mapping[str, Any],
                confidence: str, margin: float, as_of: dt.date, result: RuleResult) -> None:
    demand = need.demand
    urn = pools[0].urn
    values = demand.values
    if demand.source == FLOOR_SOURCE and "growth_per_month" in floor and "forecast" not in floor:
        values = {**values, "forecast": {}}  # the floor's scalar growth replaces the declared range
    try:
        growth = growth_at(values, confidence)
    except (ValueError, LookupError) as exc:
        result.add(f"{workload}: the runway at {confidence} cannot be judged: {exc} (demand {demand.source}); "
                   "give the forecast that quantile or set the policy's confidence within its range", urn, workload)
        return
    nodes = nodes_after_losses(loss_pools(inv, pools), zone_losses=need.zone_losses, site_losses=need.site_losses)
    losses = [f"{n} {kind}{'s' if n != 1 else ''}"
              for n, kind in ((need.zone_losses, "zone"), (need.site_losses, "site")) if n > 0]
    capacity = nodes * need.sizing.tokens_per_s_per_node
    peak = float(demand.get("peak_tokens_per_s"))
    headroom = float(demand.get("headroom"))
    lead = float(demand.get("lead_time_days"))
    runway = forecast_runway(confidence, growth, capacity_tokens_per_s=capacity, peak_tokens_per_s=peak,
                             headroom=headroom, lead_time_days=lead, as_of=as_of)
    days, runs_out, order_by = runway.runway_days, runway.runs_out_on, runway.order_by
    if days >= lead + margin or runs_out is None or order_by is None:
        return
    late = (as_of - order_by).days
    when = f"{late} day{'s' if late != 1 else ''} ago" if late > 0 else "today" if late == 0 else f"in {-late} days"
    after = f" after losing {' and '.join(losses)}" if losses else ""
    result.add(
        f"{workload}: runway {days:,.0f} days at {confidence} ({growth:.1%}/month growth): {nodes:,} nodes carry "
        f"{capacity:,.0f} tokens/s{after}, the forecast peak {peak:,.0f} tokens/s with {headroom:.0%} headroom "
        f"outgrows it on {runs_out.isoformat()}; the lead time is {lead:g} days + {margin:g}-day margin, so order "
        f"by {order_by.isoformat()} ({when}, as of {as_of.isoformat()}); demand {demand.source}",
        urn, workload)


__all__ = ["DECIDING_FIELDS", "check_runway_covers_lead_time", "policy_as_of"]

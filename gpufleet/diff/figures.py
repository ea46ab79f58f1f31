"""The figures of one side of a diff, read from its plan: per workload (capacity, the demand it must
carry, headroom, where its pools run) and per site (GPUs, power against the envelope, cost).

Pure: nothing here recomputes sizing; every figure comes from the :class:`~gpufleet.plan.FleetPlan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from gpufleet.plan import FleetPlan, WorkloadPlan
from gpufleet.capacity import floor_after_losses
from gpufleet.sizing import nodes_after_losses

if TYPE_CHECKING:
    import datetime as dt

    from gpufleet.spec import FleetSpec

T = TypeVar("T")

HOURS_PER_MONTH = 730.0
"""Hours in a billing month, as the clouds' pricing pages count it (8,760 h / 12)."""


@dataclass(frozen=True)
class Placement:
    """Where one pool of a workload runs: what a move changes."""

    site: str
    zones: tuple[str, ...]
    instance_type: str
    nodes: int
    spot_nodes: int = 0
    """Of ``nodes``, those on spot (priced at the site's spot price)."""

    @property
    def key(self) -> tuple[str, tuple[str, ...], str]:
        return (self.site, self.zones, self.instance_type)

    @property
    def spot_label(self) -> str:
        """`` · 6 of 18 spot``, or nothing without spot nodes."""
        return f" · {self.spot_nodes} of {self.nodes} spot" if self.spot_nodes else ""

    def label(self) -> str:
        return f"{self.site} · {', '.join(self.zones)} · {self.instance_type} ×{self.nodes}{self.spot_label}"

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "zones": list(self.zones), "instance_type": self.instance_type,
                "nodes": self.nodes, **({"spot_nodes": self.spot_nodes} if self.spot_nodes else {})}


@dataclass(frozen=True)
class Runway:
    """An inference service's runway at the plan's confidence, as ``gpufleet runway`` reports it."""

    days: float | None
    """Days from the as-of date until the forecast outgrows the capacity; None: never."""
    order_by: str | None
    """The date (ISO) by which more capacity must be ordered; None: never."""
    status: str
    """``ok``, ``order_now`` or ``short``."""

    def label(self) -> str:
        """``412 d · order by 2027-06-01``, or ``never``."""
        if self.days is None:
            return "never runs out"
        mark = {"order_now": " ⚠️ order now", "short": " 🚫 short"}.get(self.status, "")
        return f"{self.days:,.0f} d · order by {self.order_by}{mark}"

    def to_json(self) -> dict[str, Any]:
        return {"runway_days": None if self.days is None else rounded(self.days, 3), "order_by": self.order_by,
                "runway_status": self.status}


def runway_figures(plan: FleetPlan, spec: FleetSpec, as_of: dt.date) -> dict[str, Runway]:
    """Each inference service's :class:`Runway`, from :func:`gpufleet.runway.runway_report`."""
    from gpufleet.runway import runway_report

    report = runway_report(plan, spec, as_of=as_of).to_dict()
    out = {}
    for w in report["workloads"]:
        if w.get("role") == "inference":  # a training run reports its slack, not a runway
            out[w["name"]] = Runway(days=w["runway_days"], order_by=w["order_by"], status=w["status"])
    return out


class _FromPlan(Generic[T]):
    """A figure of the workload's plan, read under the name the report gives it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, figures: WorkloadFigures, owner: type | None = None) -> T:
        return cast(T, getattr(figures.plan, self.name))


@dataclass(frozen=True)
class WorkloadFigures:
    """A workload on one side: its plan, its capacity against the demand it must carry, the headroom
    left, and what its pools cost and draw.

    Inference services measure demand and capacity in tokens/s (forecast peak at the horizon;
    capacity at the autoscaler's maximum). Training runs measure them as compute rate, expressed
    through days: the run needs ``days_needed`` at its planned size against ``deadline_days``. The
    other role's figures are 0.
    """

    plan: WorkloadPlan
    placements: tuple[Placement, ...]
    usd_per_month: float
    """List price of its pools × :data:`HOURS_PER_MONTH` (spot nodes at the spot price)."""
    power_mw: float
    """Facility draw of its pools at full size."""
    spot_usd_per_month: float = 0.0
    """The spot part of ``usd_per_month``."""
    capacity_after_losses_tokens_per_s: float = 0.0
    """Inference: what is left after losing the zones the service declares it survives."""
    floor_after_losses_tokens_per_s: float | None = None
    """Inference with spot: what is left when the spot reclaim meets the worst declared loss
    (:func:`gpufleet.capacity.floor_after_losses`); None without spot nodes."""
    runway: Runway | None = None
    """Inference: its runway and order-by date (None: not computed for this side)."""

    role = _FromPlan[str]("role")
    gpu = _FromPlan[str]("gpu")
    nodes = _FromPlan[int]("nodes_provisioned")  # inference: at every pool's maximum
    nodes_needed = _FromPlan[int]("nodes_needed")  # carries the demand with headroom, before loss margins
    gpus = _FromPlan[int]("gpus_provisioned")

    @property
    def horizon_day(self) -> float:
        """Inference: days from now to the end of the horizon (lead time + horizon)."""
        return self.plan.lead_time_days + self.plan.horizon_days

    demand_tokens_per_s = _FromPlan[float]("demand_at_horizon_tokens_per_s")  # inference: at horizon_day
    capacity_tokens_per_s = _FromPlan[float]("tokens_per_s_at_max")  # inference
    days_needed = _FromPlan[float]("days_at_planned_size")  # training
    deadline_days = _FromPlan[float]("deadline_days")  # training

    @property
    def flops(self) -> float:
        """Training: total compute."""
        return float(self.plan.sizing.get("flops", 0.0))

    @property
    def load(self) -> float:
        """Demand over capacity (1.0: exactly carried; above 1: short). ``inf`` with no capacity."""
        if self.role == "inference":
            need, have = self.demand_tokens_per_s, self.capacity_tokens_per_s
        else:  # a training cluster's rate vs the rate that meets the deadline
            need, have = self.days_needed, self.deadline_days
            if self.gpus == 0:
                return math.inf
        if have <= 0:
            return math.inf if need > 0 else 0.0
        return need / have

    @property
    def headroom_pct(self) -> float | None:
        """Capacity above demand, as a percentage of demand (``None`` with no demand)."""
        load = self.load
        if load == 0.0:
            return None
        if math.isinf(load):
            return -100.0
        return (1.0 / load - 1.0) * 100.0

    @property
    def headroom_gpus(self) -> float:
        """Provisioned GPUs the demand does not need (negative: GPUs short)."""
        load = self.load
        if math.isinf(load):
            return -math.inf if self.gpus == 0 else -float(self.gpus)
        return self.gpus * (1.0 - load)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "gpu": self.gpu,
            "nodes": self.nodes,
            "nodes_needed": self.nodes_needed,
            "gpus": self.gpus,
            "usd_per_month": rounded(self.usd_per_month, 2),
            "power_mw": rounded(self.power_mw),
            "headroom_pct": None if self.headroom_pct is None else rounded(self.headroom_pct, 3),
            "headroom_gpus": finite_or_none(rounded(self.headroom_gpus, 3)),
            "placements": [p.to_json() for p in self.placements],
            **({"spot_usd_per_month": rounded(self.spot_usd_per_month, 2)} if self.spot_usd_per_month else {}),
            **({"floor_after_losses_tokens_per_s": rounded(self.floor_after_losses_tokens_per_s, 3)}
               if self.floor_after_losses_tokens_per_s is not None else {}),
        }
        if self.role == "inference":
            data.update(demand_at_horizon_tokens_per_s=rounded(self.demand_tokens_per_s, 3),
                        horizon_day=self.horizon_day,
                        capacity_tokens_per_s=rounded(self.capacity_tokens_per_s, 3),
                        capacity_after_losses_tokens_per_s=rounded(self.capacity_after_losses_tokens_per_s, 3),
                        **(self.runway.to_json() if self.runway else
                           {"runway_days": None, "order_by": None, "runway_status": None}))
        else:
            data.update(flops=self.flops, days_at_planned_size=rounded(self.days_needed, 4),
                        deadline_days=self.deadline_days)
        return data


def _per_node_tokens_per_s(w: WorkloadPlan) -> float:
    return w.tokens_per_s_at_max / w.nodes_provisioned if w.nodes_provisioned else 0.0


def floor_after_losses_tokens_per_s(plan: FleetPlan, w: WorkloadPlan) -> float | None:
    """An inference service's tokens/s left when the spot reclaim meets its worst declared loss: the nodes
    :func:`gpufleet.capacity.floor_after_losses` leaves, at what a node carries at the maximum; None
    without spot nodes. ``gpufleet plan`` prints it and ``gpufleet diff`` compares it."""
    domain = {s.name: s.failure_domain for s in plan.sites}
    floor = floor_after_losses(plan.pools_of(w.name), domain, zone_losses=w.survive_zone_losses,
                               site_losses=w.survive_site_losses)
    return None if floor is None else floor * _per_node_tokens_per_s(w)


def workload_figures(plan: FleetPlan, w: WorkloadPlan, runway: Runway | None = None) -> WorkloadFigures:
    pools = plan.pools_of(w.name)
    placements = tuple(sorted(
        (Placement(p.site, p.zones, p.instance_type, p.nodes, p.spot_nodes) for p in pools), key=lambda p: p.key))
    after, floor = 0.0, None
    if w.role == "inference":
        domain = {s.name: s.failure_domain for s in plan.sites}
        after = nodes_after_losses(((p.site, domain.get(p.site), p.nodes_by_zone, p.nodes) for p in pools),
                                   zone_losses=w.survive_zone_losses,
                                   site_losses=w.survive_site_losses) * _per_node_tokens_per_s(w)
        floor = floor_after_losses_tokens_per_s(plan, w)
    return WorkloadFigures(
        plan=w, placements=placements, usd_per_month=sum(p.usd_per_hour or 0.0 for p in pools) * HOURS_PER_MONTH,
        power_mw=sum(p.power_kw for p in pools) / 1000.0, capacity_after_losses_tokens_per_s=after, runway=runway,
        spot_usd_per_month=sum(p.spot_usd_per_hour or 0.0 for p in pools) * HOURS_PER_MONTH,
        floor_after_losses_tokens_per_s=floor)


@dataclass(frozen=True)
class SiteFigures:
    gpus_by_model: dict[str, int]
    power_mw: float
    envelope_mw: float
    pue: float | None
    usd_per_month: float
    pools: int

    @property
    def gpus(self) -> int:
        return sum(self.gpus_by_model.values())

    @property
    def envelope_used_pct(self) -> float:
        return self.power_mw / self.envelope_mw * 100.0 if self.envelope_mw > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"gpus": self.gpus, "gpus_by_model": dict(self.gpus_by_model), "power_mw": rounded(self.power_mw),
                "pue": self.pue, "envelope_mw": self.envelope_mw,
                "envelope_used_pct": rounded(self.envelope_used_pct, 3), "usd_per_month": rounded(self.usd_per_month, 2),
                "pools": self.pools}


def site_figures(plan: FleetPlan, name: str) -> SiteFigures | None:
    site = next((s for s in plan.sites if s.name == name), None)
    if site is None:
        return None
    pools = [p for p in plan.pools if p.site == name]
    return SiteFigures(gpus_by_model=dict(site.gpus_by_model), power_mw=site.power_mw, envelope_mw=site.envelope_mw,
                       pue=pools[0].pue if pools else None, usd_per_month=site.usd_per_hour * HOURS_PER_MONTH,
                       pools=len(pools))


def rounded(value: float, digits: int = 6) -> float:
    """``value`` as the JSON shows it: ``digits`` decimals (0: an int), infinities kept, never -0.0."""
    if isinstance(value, float) and math.isinf(value):
        return value
    if digits == 0:
        return int(round(value))
    out = round(value, digits)
    return out + 0.0  # no -0.0 in the JSON


def finite_or_none(value: float) -> float | None:
    """JSON has no infinity: ``None`` for one."""
    return value if math.isfinite(value) else None

"""Two sides of a stack change, and what changed between them.

Pure: no I/O, no Pulumi. A :class:`~gpufleet.diff.side.Side` is a plan plus the policy verdicts on
it (or the reason there is no plan: the stack does not exist on that side, or no placement
satisfies it); :mod:`gpufleet.diff.figures` reads each side's per-workload and per-site figures
from its plan; :func:`compare` turns two sides into a :class:`FleetDiff`, which the Markdown, JSON
and chart renderers read. Nothing here recomputes sizing: every demand, capacity, power and price
figure comes from the :class:`~gpufleet.plan.FleetPlan`.

Conventions of the report:

* cost per month is the plan's list price per hour × :data:`HOURS_PER_MONTH` (730 h);
* power is the facility draw (IT load × PUE) at every pool's maximum size, in MW;
* headroom is how far a workload's capacity exceeds the demand it must carry: for an inference
  service, capacity at maximum size against the forecast peak at the horizon; for a training run,
  the compute rate of its cluster against the rate that finishes by the deadline. As a percentage
  it is ``capacity / demand − 1`` (the spec's ``headroom`` field uses the same definition); in GPUs
  it is the provisioned GPUs the demand does not need, ``gpus × (1 − demand / capacity)``;
* a violation of HEAD is *new* when BASE had no violation with the same policy and resource.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from gpufleet.diff.figures import (
    HOURS_PER_MONTH,
    Placement,
    SiteFigures,
    WorkloadFigures,
    rounded,
    site_figures,
    workload_figures,
)
from gpufleet.diff.side import Side, Violation

DIFF_SCHEMA_VERSION = 1

Change = Literal["added", "removed", "changed", "unchanged"]

_REL_TOL = 1e-9


@dataclass(frozen=True)
class WorkloadDelta:
    """One workload across the two sides."""

    name: str
    role: str
    change: Change
    base: WorkloadFigures | None
    head: WorkloadFigures | None
    fields: tuple[str, ...] = ()
    """Which figures differ: ``gpus``, ``nodes``, ``demand``, ``capacity``, ``placement``, ``gpu``,
    ``cost``, ``power``, ``runway`` (its days or order-by date)."""

    @property
    def gpus_change(self) -> int:
        return (self.head.gpus if self.head else 0) - (self.base.gpus if self.base else 0)

    @property
    def short(self) -> bool:
        """HEAD leaves this workload short of its demand."""
        return self.head is not None and self.head.load > 1.0 + _REL_TOL

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "change": self.change, "changed": list(self.fields),
                "gpus_change": self.gpus_change, "short": self.short,
                "base": self.base.to_json() if self.base else None,
                "head": self.head.to_json() if self.head else None}


@dataclass(frozen=True)
class SiteDelta:
    name: str
    cloud: str
    region: str
    change: Change
    base: SiteFigures | None
    head: SiteFigures | None
    fields: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "cloud": self.cloud, "region": self.region, "change": self.change,
                "changed": list(self.fields), "base": self.base.to_json() if self.base else None,
                "head": self.head.to_json() if self.head else None}


@dataclass(frozen=True)
class Move:
    """A workload whose pools changed site, zones or instance type."""

    workload: str
    role: str
    before: tuple[Placement, ...]
    after: tuple[Placement, ...]

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "role": self.role, "from": [p.to_json() for p in self.before],
                "to": [p.to_json() for p in self.after]}


@dataclass(frozen=True)
class MarkedViolation:
    violation: Violation
    new: bool

    def to_json(self) -> dict[str, Any]:
        return {**self.violation.to_json(), "new": self.new}


@dataclass(frozen=True)
class Delta:
    """A base → head pair of one figure."""

    base: float
    head: float

    @property
    def change(self) -> float:
        return self.head - self.base

    def to_json(self, digits: int = 6) -> dict[str, float]:
        return {"base": rounded(self.base, digits), "head": rounded(self.head, digits), "change": rounded(self.change, digits)}


@dataclass(frozen=True)
class FleetDiff:
    """Everything the report says, in one place: what changed from ``base`` to ``head``, per
    workload, per site, in placements and in policy results (each computed once, when first read).

    A side with no feasible placement has no workloads or sites to compare: listing everything as
    added or removed would say the change deletes the fleet, so those stay empty and the report says
    why instead.
    """

    base: Side
    head: Side

    @property
    def stack(self) -> str:
        return self.head.stack or self.base.stack

    @cached_property
    def workloads(self) -> tuple[WorkloadDelta, ...]:
        """Every workload of either side: training runs first, each group in the head's order."""
        return _workload_deltas(self.base, self.head) if self.comparable else ()

    @cached_property
    def sites(self) -> tuple[SiteDelta, ...]:
        return _site_deltas(self.base, self.head) if self.comparable else ()

    @cached_property
    def moves(self) -> tuple[Move, ...]:
        """Workloads whose pools changed site, zones or instance type."""
        return tuple(Move(w.name, w.role, w.base.placements, w.head.placements) for w in self.workloads
                     if w.base and w.head and [p.key for p in w.base.placements] != [p.key for p in w.head.placements])

    @cached_property
    def violations(self) -> tuple[MarkedViolation, ...]:
        """HEAD's violations, each marked new or already on BASE; blocking and new ones first."""
        base_keys = {v.key for v in self.base.violations or ()}
        return tuple(sorted(
            (MarkedViolation(v, v.key not in base_keys) for v in self.head.violations or ()),
            key=lambda m: (not m.violation.mandatory, not m.new, m.violation.policy, m.violation.resource)))

    @cached_property
    def resolved(self) -> tuple[Violation, ...]:
        """BASE's violations HEAD no longer has."""
        head_keys = {v.key for v in self.head.violations or ()}
        return tuple(v for v in self.base.violations or () if v.key not in head_keys)

    @cached_property
    def gpus_by_model(self) -> dict[str, Delta]:
        base, head = self.base.gpus_by_model, self.head.gpus_by_model
        models = sorted(set(base) | set(head)) if self.comparable else []
        return {m: Delta(base.get(m, 0), head.get(m, 0)) for m in models}

    @property
    def gpus(self) -> Delta:
        return Delta(self.base.gpus, self.head.gpus)

    @property
    def power_mw(self) -> Delta:
        return Delta(self.base.power_mw, self.head.power_mw)

    @property
    def usd_per_month(self) -> Delta:
        return Delta(self.base.usd_per_month, self.head.usd_per_month)

    @property
    def blocked(self) -> bool:
        return self.head.blocked

    @property
    def comparable(self) -> bool:
        """Both sides have a plan or are absent; False when one has no feasible placement."""
        return "infeasible" not in (self.base.status, self.head.status)

    @property
    def new_mandatory(self) -> tuple[Violation, ...]:
        return tuple(m.violation for m in self.violations if m.new and m.violation.mandatory)

    @property
    def changed_workloads(self) -> tuple[WorkloadDelta, ...]:
        return tuple(w for w in self.workloads if w.change != "unchanged")

    @property
    def changed_sites(self) -> tuple[SiteDelta, ...]:
        return tuple(s for s in self.sites if s.change != "unchanged")

    @property
    def unchanged(self) -> bool:
        """Nothing a reviewer would see differs: capacity, placement and policy results."""
        return (not self.changed_workloads and not self.changed_sites and not self.moves
                and not any(m.new for m in self.violations) and not self.resolved
                and self.base.status == self.head.status)

    @property
    def exit_code(self) -> int:
        from gpufleet.errors import EXIT_BLOCKED, EXIT_OK

        return EXIT_BLOCKED if self.blocked else EXIT_OK

    def verdict_line(self) -> str:
        """The first line of the PR comment: pass or blocked, and why, in one line."""
        from gpufleet.diff.format import verdict_line

        return verdict_line(self)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON view (``gpufleet diff --format json``); key order is part of the contract."""
        return {
            "schema_version": DIFF_SCHEMA_VERSION,
            "stack": self.stack,
            "verdict": {
                "status": "blocked" if self.blocked else "pass",
                "summary": self.verdict_line(),
                "exit_code": self.exit_code,
                "mandatory_violations": len(self.head.mandatory),
                "new_mandatory_violations": len(self.new_mandatory),
                "advisory_violations": len(self.head.advisory),
                "policy_evaluated": self.head.violations is not None,
            },
            "base": self.base.to_json(),
            "head": self.head.to_json(),
            "totals": {
                "gpus": self.gpus.to_json(0),
                "gpus_by_model": {m: d.to_json(0) for m, d in self.gpus_by_model.items()},
                "power_mw": self.power_mw.to_json(),
                "usd_per_month": self.usd_per_month.to_json(2),
                "hours_per_month": HOURS_PER_MONTH,
            },
            "workloads": [w.to_json() for w in self.workloads],
            "sites": [s.to_json() for s in self.sites],
            "moves": [m.to_json() for m in self.moves],
            "violations": [m.to_json() for m in self.violations],
            "resolved_violations": [v.to_json() for v in self.resolved],
        }


# --- comparing ------------------------------------------------------------------------------------


def compare(base: Side, head: Side) -> FleetDiff:
    """What changed from ``base`` to ``head``: per workload, per site, placements and policy."""
    return FleetDiff(base, head)


def _workload_deltas(base: Side, head: Side) -> tuple[WorkloadDelta, ...]:
    def figures(side: Side) -> dict[str, tuple[str, WorkloadFigures]]:
        if side.plan is None:
            return {}
        return {w.name: (w.role, workload_figures(side.plan, w, side.runway.get(w.name)))
                for w in side.plan.workloads}

    before, after = figures(base), figures(head)
    order = [n for n in after] + [n for n in before if n not in after]
    out: list[WorkloadDelta] = []
    for name in order:
        b = before.get(name)
        h = after.get(name)
        role = (h or b)[1].role if (h or b) else ""  # type: ignore[index]
        if b is None:
            out.append(WorkloadDelta(name, role, "added", None, h[1] if h else None))
            continue
        if h is None:
            out.append(WorkloadDelta(name, role, "removed", b[1], None))
            continue
        changed = _changed_workload_fields(b[1], h[1])
        out.append(WorkloadDelta(name, role, "changed" if changed else "unchanged", b[1], h[1], changed))
    # Training runs first, then services; each group in the head's (the spec's) order.
    out.sort(key=lambda w: 0 if w.role == "training" else 1)
    return tuple(out)


def _changed_workload_fields(b: WorkloadFigures, h: WorkloadFigures) -> tuple[str, ...]:
    fields: list[str] = []
    if b.role != h.role:
        fields.append("role")
    if b.gpu != h.gpu:
        fields.append("gpu")
    if b.gpus != h.gpus:
        fields.append("gpus")
    if b.nodes != h.nodes or b.nodes_needed != h.nodes_needed:
        fields.append("nodes")
    if not _close(b.demand_tokens_per_s, h.demand_tokens_per_s) or not _close(b.flops, h.flops) \
            or not _close(b.deadline_days, h.deadline_days) or not _close(b.horizon_day, h.horizon_day):
        fields.append("demand")
    if not _close(b.capacity_tokens_per_s, h.capacity_tokens_per_s) or not _close(b.days_needed, h.days_needed):
        fields.append("capacity")
    if [p.key for p in b.placements] != [p.key for p in h.placements]:
        fields.append("placement")
    if not _close(b.usd_per_month, h.usd_per_month):
        fields.append("cost")
    if not _close(b.power_mw, h.power_mw):
        fields.append("power")
    if b.runway != h.runway and b.runway is not None and h.runway is not None:
        fields.append("runway")
    return tuple(fields)


def _site_deltas(base: Side, head: Side) -> tuple[SiteDelta, ...]:
    def sites(side: Side) -> dict[str, tuple[str, str]]:
        return {s.name: (s.cloud, s.region) for s in side.plan.sites} if side.plan else {}

    before, after = sites(base), sites(head)
    order = [n for n in after] + [n for n in before if n not in after]
    out: list[SiteDelta] = []
    for name in order:
        cloud, region = after.get(name) or before[name]
        b = site_figures(base.plan, name) if base.plan else None
        h = site_figures(head.plan, name) if head.plan else None
        if b is None or h is None:
            out.append(SiteDelta(name, cloud, region, "added" if b is None else "removed", b, h))
            continue
        fields: list[str] = []
        if b.gpus_by_model != h.gpus_by_model:
            fields.append("gpus")
        if not _close(b.power_mw, h.power_mw):
            fields.append("power")
        if not _close(b.envelope_mw, h.envelope_mw):
            fields.append("envelope")
        if b.pue is not None and h.pue is not None and not _close(b.pue, h.pue):
            fields.append("pue")
        if not _close(b.usd_per_month, h.usd_per_month):
            fields.append("cost")
        out.append(SiteDelta(name, cloud, region, "changed" if fields else "unchanged", b, h, tuple(fields)))
    return tuple(out)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=1e-9)

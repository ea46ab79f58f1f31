"""Two sides of a stack change, and what changed between them.

Pure: no I/O, no Pulumi. A :class:`Side` is a plan plus the policy verdicts on it (or the reason
there is no plan: the stack does not exist on that side, or no placement satisfies it). Tests and
the CLI build sides the same way; :func:`compare` turns two sides into a :class:`FleetDiff`, which
the Markdown, JSON and chart renderers read. Nothing here recomputes sizing: every demand, capacity,
power and price figure comes from the :class:`~gpufleet.plan.FleetPlan`.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gpufleet.plan import FleetPlan, PoolPlan, WorkloadPlan
from gpufleet.sizing import capacity_after_losses

DIFF_SCHEMA_VERSION = 1
HOURS_PER_MONTH = 730.0
"""Hours in a billing month, as the clouds' pricing pages count it (8,760 h / 12)."""

SideStatus = Literal["present", "absent", "infeasible"]
Verdict = Literal["pass", "blocked"]
Change = Literal["added", "removed", "changed", "unchanged"]

_REL_TOL = 1e-9


@dataclass(frozen=True)
class Violation:
    """One policy violation reported by the policy pack.

    Attributes:
        policy: the policy name, e.g. ``capacity-covers-demand``.
        enforcement: ``mandatory`` or ``remediate`` (both block), ``advisory`` (warns), ``disabled``.
        resource: the resource the violation is about, as its URN ("" for the stack as a whole).
        message: what the policy said.
        resource_name: the resource's logical name, for display ("" when unknown).
    """

    policy: str
    enforcement: str
    resource: str
    message: str
    resource_name: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What makes two violations "the same" across base and head: policy and resource."""
        return (self.policy, self.resource)

    @property
    def mandatory(self) -> bool:
        """Blocks the plan (Pulumi's ``remediate`` level blocks as ``mandatory`` does)."""
        return self.enforcement in ("mandatory", "remediate")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Violation:
        """From one entry of ``PreviewResult.to_json()["violations"]``."""
        return cls(
            policy=str(data.get("policy", "")),
            enforcement=str(data.get("enforcement", "advisory")),
            resource=str(data.get("resource") or ""),
            message=str(data.get("message", "")),
            resource_name=str(data.get("resource_name") or ""),
        )

    def to_json(self) -> dict[str, str]:
        return {"policy": self.policy, "enforcement": self.enforcement, "resource": self.resource,
                "resource_name": self.resource_name, "message": self.message}


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a stack's plan and the policy verdicts on it.

    Attributes:
        label: ``base`` or ``head``.
        source: where the stack came from, as the user gave it (a path, or ``REF:PATH``).
        stack: the stack name (``prod`` for ``Pulumi.prod.yaml``).
        status: ``present`` (planned), ``absent`` (the stack does not exist on this side: a new or
            a deleted stack) or ``infeasible`` (no placement satisfies it; ``error`` says why).
        plan: the plan, when ``status`` is ``present``.
        violations: what the policy pack reported on this side; ``None`` when it was not run.
        verdict: the policy run's own verdict (``pass`` / ``blocked``), if it gave one.
        error: why there is no plan (``infeasible``).
    """

    label: str
    source: str
    stack: str
    status: SideStatus = "present"
    plan: FleetPlan | None = None
    violations: tuple[Violation, ...] | None = ()
    verdict: Verdict | None = None
    error: str | None = None

    @classmethod
    def planned(cls, label: str, source: str, plan: FleetPlan,
                violations: Iterable[Violation | Mapping[str, Any]] | None = (),
                verdict: Verdict | None = None) -> Side:
        """A side with a plan; violations may be :class:`Violation` objects or preview JSON dicts."""
        found = None if violations is None else tuple(
            v if isinstance(v, Violation) else Violation.from_json(v) for v in violations)
        return cls(label=label, source=source, stack=plan.stack, status="present", plan=plan,
                   violations=found, verdict=verdict)

    @classmethod
    def absent(cls, label: str, source: str, stack: str) -> Side:
        """The stack does not exist on this side (a new stack's base, a deleted stack's head)."""
        return cls(label=label, source=source, stack=stack, status="absent", plan=None, violations=())

    @classmethod
    def infeasible(cls, label: str, source: str, stack: str, error: str) -> Side:
        """The stack validates but no placement satisfies it: nothing can be deployed."""
        return cls(label=label, source=source, stack=stack, status="infeasible", plan=None,
                   violations=(), verdict="blocked", error=error)

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations or () if v.mandatory)

    @property
    def advisory(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations or () if v.enforcement == "advisory")

    @property
    def blocked(self) -> bool:
        """Nothing of this side can be deployed: infeasible, or a mandatory policy blocks it."""
        return self.status == "infeasible" or self.verdict == "blocked" or bool(self.mandatory)

    @property
    def pools(self) -> tuple[PoolPlan, ...]:
        return self.plan.pools if self.plan else ()

    @property
    def gpus_by_model(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.pools:
            out[p.gpu] = out.get(p.gpu, 0) + p.gpus
        return dict(sorted(out.items()))

    @property
    def gpus(self) -> int:
        return self.plan.gpus if self.plan else 0

    @property
    def power_mw(self) -> float:
        return self.plan.power_mw if self.plan else 0.0

    @property
    def usd_per_month(self) -> float:
        return self.plan.usd_per_hour * HOURS_PER_MONTH if self.plan else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "source": self.source,
            "stack": self.stack,
            "status": self.status,
            "error": self.error,
            "verdict": "blocked" if self.blocked else "pass",
            "policy_evaluated": self.violations is not None,
            "gpus": self.gpus,
            "gpus_by_model": self.gpus_by_model,
            "power_mw": _r(self.power_mw),
            "usd_per_month": _r(self.usd_per_month, 2),
            "mandatory_violations": len(self.mandatory),
            "advisory_violations": len(self.advisory),
        }


# --- per-workload and per-site figures -----------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where one pool of a workload runs: what a move changes."""

    site: str
    zones: tuple[str, ...]
    instance_type: str
    nodes: int

    @property
    def key(self) -> tuple[str, tuple[str, ...], str]:
        return (self.site, self.zones, self.instance_type)

    def label(self) -> str:
        return f"{self.site} · {', '.join(self.zones)} · {self.instance_type} ×{self.nodes}"

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "zones": list(self.zones), "instance_type": self.instance_type,
                "nodes": self.nodes}


@dataclass(frozen=True)
class WorkloadFigures:
    """A workload on one side: its capacity, the demand it must carry, and the headroom left.

    Inference services measure demand and capacity in tokens/s (forecast peak at the horizon;
    capacity at the autoscaler's maximum). Training runs measure them as compute rate, expressed
    through days: the run needs ``days_needed`` at its planned size against ``deadline_days``.
    """

    role: str
    gpu: str
    nodes: int
    nodes_needed: int
    gpus: int
    usd_per_month: float
    power_mw: float
    placements: tuple[Placement, ...]
    demand_tokens_per_s: float = 0.0
    capacity_tokens_per_s: float = 0.0
    capacity_after_losses_tokens_per_s: float = 0.0
    horizon_day: float = 0.0
    flops: float = 0.0
    days_needed: float = 0.0
    deadline_days: float = 0.0

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
            "usd_per_month": _r(self.usd_per_month, 2),
            "power_mw": _r(self.power_mw),
            "headroom_pct": None if self.headroom_pct is None else _r(self.headroom_pct, 3),
            "headroom_gpus": _finite(_r(self.headroom_gpus, 3)),
            "placements": [p.to_json() for p in self.placements],
        }
        if self.role == "inference":
            data.update(demand_at_horizon_tokens_per_s=_r(self.demand_tokens_per_s, 3),
                        horizon_day=self.horizon_day,
                        capacity_tokens_per_s=_r(self.capacity_tokens_per_s, 3),
                        capacity_after_losses_tokens_per_s=_r(self.capacity_after_losses_tokens_per_s, 3))
        else:
            data.update(flops=self.flops, days_at_planned_size=_r(self.days_needed, 4),
                        deadline_days=self.deadline_days)
        return data


def workload_figures(plan: FleetPlan, w: WorkloadPlan) -> WorkloadFigures:
    pools = plan.pools_of(w.name)
    placements = tuple(sorted(
        (Placement(p.site, p.zones, p.instance_type, p.nodes) for p in pools), key=lambda p: p.key))
    common: dict[str, Any] = dict(
        role=w.role, gpu=w.gpu, nodes=w.nodes_provisioned, nodes_needed=w.nodes_needed,
        gpus=w.gpus_provisioned, usd_per_month=sum(p.usd_per_hour or 0.0 for p in pools) * HOURS_PER_MONTH,
        power_mw=sum(p.power_kw for p in pools) / 1000.0, placements=placements,
    )
    if w.role == "inference":
        by_domain = {f"{p.site}/{z}": n for p in pools for z, n in p.nodes_by_zone.items()}
        per_node = w.tokens_per_s_at_max / w.nodes_provisioned if w.nodes_provisioned else 0.0
        after = capacity_after_losses(by_domain, w.survive_zone_losses) * per_node
        return WorkloadFigures(
            demand_tokens_per_s=w.demand_at_horizon_tokens_per_s, capacity_tokens_per_s=w.tokens_per_s_at_max,
            capacity_after_losses_tokens_per_s=after, horizon_day=w.lead_time_days + w.horizon_days, **common)
    return WorkloadFigures(flops=float(w.sizing.get("flops", 0.0)), days_needed=w.days_at_planned_size,
                           deadline_days=w.deadline_days, **common)


@dataclass(frozen=True)
class WorkloadDelta:
    """One workload across the two sides."""

    name: str
    role: str
    change: Change
    base: WorkloadFigures | None
    head: WorkloadFigures | None
    fields: tuple[str, ...] = ()
    """Which figures differ: ``gpus``, ``nodes``, ``demand``, ``capacity``, ``placement``, ``gpu``."""

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
        return {"gpus": self.gpus, "gpus_by_model": dict(self.gpus_by_model), "power_mw": _r(self.power_mw),
                "pue": self.pue, "envelope_mw": self.envelope_mw,
                "envelope_used_pct": _r(self.envelope_used_pct, 3), "usd_per_month": _r(self.usd_per_month, 2),
                "pools": self.pools}


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


def site_figures(plan: FleetPlan, name: str) -> SiteFigures | None:
    site = next((s for s in plan.sites if s.name == name), None)
    if site is None:
        return None
    pools = [p for p in plan.pools if p.site == name]
    return SiteFigures(gpus_by_model=dict(site.gpus_by_model), power_mw=site.power_mw, envelope_mw=site.envelope_mw,
                       pue=pools[0].pue if pools else None, usd_per_month=site.usd_per_hour * HOURS_PER_MONTH,
                       pools=len(pools))


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
        return {"base": _r(self.base, digits), "head": _r(self.head, digits), "change": _r(self.change, digits)}


@dataclass(frozen=True)
class FleetDiff:
    """Everything the report says, in one place."""

    stack: str
    base: Side
    head: Side
    workloads: tuple[WorkloadDelta, ...]
    sites: tuple[SiteDelta, ...]
    moves: tuple[Move, ...]
    violations: tuple[MarkedViolation, ...]
    resolved: tuple[Violation, ...]
    gpus_by_model: dict[str, Delta] = field(default_factory=dict)

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
    # A side with no feasible placement has no workloads or sites to compare: listing everything as
    # added or removed would say the change deletes the fleet. The report says why instead.
    comparable = "infeasible" not in (base.status, head.status)
    workloads = _workload_deltas(base, head) if comparable else ()
    sites = _site_deltas(base, head) if comparable else ()
    moves = tuple(
        Move(w.name, w.role, w.base.placements, w.head.placements)
        for w in workloads
        if w.base and w.head and [p.key for p in w.base.placements] != [p.key for p in w.head.placements]
    )
    base_keys = {v.key for v in base.violations or ()}
    head_keys = {v.key for v in head.violations or ()}
    marked = tuple(sorted(
        (MarkedViolation(v, v.key not in base_keys) for v in head.violations or ()),
        key=lambda m: (not m.violation.mandatory, not m.new, m.violation.policy, m.violation.resource)))
    resolved = tuple(v for v in base.violations or () if v.key not in head_keys)
    base_gpus, head_gpus = base.gpus_by_model, head.gpus_by_model
    models = sorted(set(base_gpus) | set(head_gpus)) if comparable else []
    return FleetDiff(
        stack=head.stack or base.stack, base=base, head=head, workloads=workloads, sites=sites, moves=moves,
        violations=marked, resolved=resolved,
        gpus_by_model={m: Delta(base_gpus.get(m, 0), head_gpus.get(m, 0)) for m in models},
    )


def _workload_deltas(base: Side, head: Side) -> tuple[WorkloadDelta, ...]:
    def figures(side: Side) -> dict[str, tuple[str, WorkloadFigures]]:
        if side.plan is None:
            return {}
        return {w.name: (w.role, workload_figures(side.plan, w)) for w in side.plan.workloads}

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


def _r(value: float, digits: int = 6) -> float:
    if isinstance(value, float) and math.isinf(value):
        return value
    if digits == 0:
        return int(round(value))
    out = round(value, digits)
    return out + 0.0  # no -0.0 in the JSON


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None

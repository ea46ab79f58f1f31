"""Demand against capacity over the horizon, for base and head, as a deterministic SVG.

The chart shows a reviewer where the lines cross: the day the forecast demand outgrows the
capacity of base (what runs today) and of head (what this change lands).

* An **inference service**: tokens/s from today (day 0) to its lead time + horizon. Demand is
  :func:`gpufleet.sizing.forecast_tokens_per_s` with the service's own peak and growth (one line,
  or one per side when the change alters the forecast). Capacity is provisioned nodes ×
  tokens/s per node: base's from day 0, head's stepping from base's at landing (day
  ``lead_time_days``, when the capacity this change orders starts serving).
* A **training run**: cumulative compute against the run's total FLOPs, from day 0; each side's
  cluster delivers its compute linearly and finishes on day ``days_at_planned_size``; the deadline
  is a vertical line.
* The **fleet** (the default): every inference service in GPU-equivalents (demand ÷ tokens/s per
  node × GPUs per node), summed, against provisioned inference GPUs; each service's head capacity
  steps at its own landing day.

Every plotted line has exactly one legend entry and an SVG id ``series-<n>``; the drawing (deterministic
SVG, matplotlib imported only when drawing) is :mod:`gpufleet.chart`'s, shared with ``gpufleet runway``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpufleet.chart import ChartData, Series, chart_bytes
from gpufleet.diff.side import Side
from gpufleet.errors import Issue, SpecError
from gpufleet.outputs import write_atomic
from gpufleet.plan import FleetPlan, PoolPlan
from gpufleet.sizing import forecast_tokens_per_s

FLEET = "fleet"
_POINTS = 241


@dataclass(frozen=True)
class _Service:
    """What the chart needs of one inference service on one side, read from its pools."""

    peak_tokens_per_s: float
    growth_per_month: float
    lead_time_days: float
    horizon_days: float
    nodes: int
    tokens_per_s_per_node: float
    gpus_per_node: int

    @property
    def capacity_tokens_per_s(self) -> float:
        return self.nodes * self.tokens_per_s_per_node

    @property
    def end_day(self) -> float:
        return self.lead_time_days + self.horizon_days

    def demand(self, day: float) -> float:
        return forecast_tokens_per_s(self.peak_tokens_per_s, self.growth_per_month, day)

    def same_forecast(self, other: _Service) -> bool:
        return (self.peak_tokens_per_s, self.growth_per_month) == (other.peak_tokens_per_s, other.growth_per_month)


def _service(plan: FleetPlan | None, name: str) -> _Service | None:
    if plan is None:
        return None
    pools: list[PoolPlan] = [p for p in plan.pools_of(name) if p.role == "inference"]
    if not pools:
        return None
    inputs: dict[str, Any] = pools[0].sizing.get("inputs", {})
    return _Service(
        peak_tokens_per_s=float(inputs["peak_tokens_per_s"]), growth_per_month=float(inputs["growth_per_month"]),
        lead_time_days=float(inputs["lead_time_days"]), horizon_days=float(inputs["horizon_days"]),
        nodes=sum(p.nodes for p in pools), tokens_per_s_per_node=pools[0].tokens_per_s_per_node,
        gpus_per_node=pools[0].gpus_per_node,
    )


def _grid(end: float) -> tuple[float, ...]:
    end = max(end, 1.0)
    return tuple(end * i / (_POINTS - 1) for i in range(_POINTS))


def _step_days(grid: Sequence[float], steps: Sequence[float]) -> tuple[float, ...]:
    """The grid with each step day added (twice), so a step is drawn vertical at the right day."""
    return tuple(sorted({*grid, *steps}))


def chart_data(base: Side, head: Side, workload: str = FLEET) -> ChartData:
    """The series of the chart, without drawing it (tests and other renderers use this).

    Raises:
        SpecError: ``workload`` is not a workload of either side.
    """
    if workload == FLEET:
        return _fleet(base, head)
    names = {w.name: w.role for side in (base, head) if side.plan for w in side.plan.workloads}
    if workload not in names:
        raise SpecError(Issue("--chart-workload", f"no workload named {workload!r} in base or head",
                              ", ".join([FLEET, *sorted(names)])))
    if names[workload] == "inference":
        return _inference(base, head, workload)
    return _training(base, head, workload)


def _inference(base: Side, head: Side, name: str) -> ChartData:
    b, h = _service(base.plan, name), _service(head.plan, name)
    ref = h or b
    assert ref is not None
    end = max(s.end_day for s in (b, h) if s)
    landing = h.lead_time_days if h else 0.0
    grid = _step_days(_grid(end), [landing])
    series: list[Series] = []
    if h:
        label = "forecast demand" if (b is None or h.same_forecast(b)) else "forecast demand (head)"
        series.append(Series(label, grid, tuple(h.demand(d) for d in grid), "demand"))
    if b and (h is None or not h.same_forecast(b)):
        series.append(Series("forecast demand (base)", grid, tuple(b.demand(d) for d in grid), "demand-base"))
    base_cap = b.capacity_tokens_per_s if b else 0.0
    if b:
        series.append(Series(f"base capacity ({b.nodes:,} nodes)", grid, tuple(base_cap for _ in grid), "base"))
    if h:
        head_cap = h.capacity_tokens_per_s
        values = tuple(base_cap if d < landing else head_cap for d in grid)
        series.append(Series(f"head capacity ({h.nodes:,} nodes, from day {landing:g})", grid, values, "head",
                             step=True))
    return ChartData(title=f"{name}: forecast demand vs capacity", y_label="tokens/s", series=tuple(series))


def _training(base: Side, head: Side, name: str) -> ChartData:
    def run(side: Side) -> Any:
        if side.plan is None:
            return None
        return next((w for w in side.plan.workloads if w.name == name), None)

    b, h = run(base), run(head)
    ref = h or b
    flops = float(ref.sizing.get("flops", 0.0))
    end = max([w.deadline_days for w in (b, h) if w] + [w.days_at_planned_size for w in (b, h) if w]) * 1.1
    grid = _grid(end)
    series: list[Series] = [Series(f"compute needed ({flops:.2e} FLOP)", grid, tuple(flops for _ in grid), "demand")]
    for side, w in (("base", b), ("head", h)):
        if w is None or w.days_at_planned_size <= 0:
            continue
        total = float(w.sizing.get("flops", flops))
        finish = w.days_at_planned_size
        values = tuple(total * min(d / finish, 1.0) for d in grid)
        series.append(Series(f"{side}: {w.gpus_provisioned:,} {w.gpu} (done day {finish:.1f})", grid, values, side))
    deadline = (h or b).deadline_days
    series.append(Series(f"deadline (day {deadline:g})", (deadline, deadline), (0.0, flops * 1.05), "marker"))
    return ChartData(title=f"{name}: compute delivered vs needed", y_label="FLOP (cumulative)", series=tuple(series))


def _fleet(base: Side, head: Side) -> ChartData:
    names: list[str] = []
    for side in (head, base):
        for w in side.plan.workloads if side.plan else ():
            if w.role == "inference" and w.name not in names:
                names.append(w.name)
    pairs = [(_service(base.plan, n), _service(head.plan, n)) for n in names]
    if not pairs:
        return ChartData(title="Fleet: inference demand vs provisioned GPUs", y_label="GPUs", series=(),
                         note="no inference services on either side")
    end = max(s.end_day for pair in pairs for s in pair if s)
    landings = sorted({h.lead_time_days for b, h in pairs
                       if h and (b is None or b.nodes * b.gpus_per_node != h.nodes * h.gpus_per_node)})
    grid = _step_days(_grid(end), landings)

    def gpus_demand(s: _Service, day: float) -> float:
        return s.demand(day) / s.tokens_per_s_per_node * s.gpus_per_node

    demand_head = tuple(sum(gpus_demand(h, d) for _, h in pairs if h) for d in grid)
    demand_base = tuple(sum(gpus_demand(b, d) for b, _ in pairs if b) for d in grid)
    base_gpus = sum(b.nodes * b.gpus_per_node for b, _ in pairs if b)

    def head_gpus(day: float) -> float:
        total = 0.0
        for b, h in pairs:
            before = b.nodes * b.gpus_per_node if b else 0
            if h is None:
                total += before
            else:
                total += before if day < h.lead_time_days else h.nodes * h.gpus_per_node
        return total

    same = all(b is not None and h is not None and b.same_forecast(h) for b, h in pairs)
    series: list[Series] = []
    has_head = any(h for _, h in pairs)
    has_base = any(b for b, _ in pairs)
    if has_head:
        series.append(Series("forecast demand" if same else "forecast demand (head)", grid, demand_head, "demand"))
    if has_base and not same:
        series.append(Series("forecast demand (base)", grid, demand_base, "demand-base"))
    if has_base:
        series.append(Series(f"base capacity ({base_gpus:,} GPUs)", grid, tuple(float(base_gpus) for _ in grid),
                             "base"))
    if has_head:
        final = head_gpus(end)
        when = ("same as base" if not landings else f"from day {landings[0]:g}" if len(landings) == 1
                else f"from days {', '.join(f'{d:g}' for d in landings)}")
        series.append(Series(f"head capacity ({final:,.0f} GPUs, {when})", grid, tuple(head_gpus(d) for d in grid),
                             "head", step=True))
    return ChartData(title=f"Fleet: inference demand vs provisioned GPUs ({len(pairs)} services)",
                     y_label="GPUs (demand in GPU-equivalents)", series=tuple(series))


def render_chart(base: Side, head: Side, path: str | Path, *, workload: str = FLEET) -> Path:
    """Draw :func:`chart_data` to ``path``, atomically (SVG; another suffix such as ``.png`` picks
    that format).

    Raises:
        SpecError: unknown ``workload``, matplotlib is not installed, or the file cannot be written.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "svg"
    write_atomic(path, chart_bytes([chart_data(base, head, workload)], fmt, salt="gpufleet-diff"))
    return path

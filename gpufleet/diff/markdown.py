"""The diff as a pull-request comment: a verdict line, then short tables; the rest collapsed.

Pure. Layout, top to bottom:

1. the verdict line (``### 🚫 Blocked: …`` / ``### ✅ Passes: …``) and where base and head came from;
2. a fleet summary table: GPUs by model, facility power, cost per month, policy result;
3. the policy violations of head, new ones marked 🆕 (resolved ones collapsed);
4. workloads whose figures changed, training runs and inference services in separate tables
   (their units differ; services with their runway and order-by date, base → head, when the sides
   carry them); the first rows open, the rest and every unchanged workload collapsed in
   ``<details>``;
5. sites whose load changed (unchanged collapsed);
6. placement moves (pools that changed site, zones or instance type).

GitHub rejects comments over 65,536 characters, and a long comment is unreadable anyway, so the
renderer keeps within ``max_bytes`` (UTF-8 bytes, never fewer than characters): when the full
report is too long it drops collapsed rows first, then open rows, and says how many rows it left
out. Every table and ``<details>`` block it emits is complete; nothing is cut mid-row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gpufleet.diff import format as fmt
from gpufleet.diff.figures import WorkloadFigures
from gpufleet.diff.model import FleetDiff, MarkedViolation, Move, SiteDelta, WorkloadDelta
from gpufleet.diff.side import Side, Violation

DEFAULT_MAX_BYTES = 60_000
"""Default budget: under GitHub's 65,536-character comment limit with room for a wrapper."""
OPEN_ROWS = 10
"""Changed rows shown before the rest of a table is collapsed."""

_DETAIL_CAPS: tuple[int | None, ...] = (None, 200, 60, 20, 5, 0)
_OPEN_CAPS = (OPEN_ROWS, 5, 2, 0)


@dataclass
class _Budget:
    open_rows: int = OPEN_ROWS
    detail_rows: int | None = None  # None: no limit
    omitted: int = field(default=0)

    def take(self, rows: list[str], *, collapsed: bool) -> list[str]:
        cap = self.detail_rows if collapsed else self.open_rows
        if cap is None or len(rows) <= cap:
            return rows
        self.omitted += len(rows) - cap
        return rows[:cap]

    def table(self, header: list[str], rows: list[str], more: Callable[[int], str]) -> list[str]:
        """``header`` and the rows the open cap allows; the rest (within the collapsed cap) in a
        collapsed block titled ``more(count of the rest)``."""
        shown = self.take(rows, collapsed=False)
        lines = [*header, *shown, ""]
        if len(shown) < len(rows):
            rest = rows[len(shown):]
            self.omitted -= len(rest)  # counted again below, if the collapsed cap drops them too
            kept = self.take(rest, collapsed=True)
            if kept:
                lines += _details(more(len(rest)), [*header, *kept])
        return lines


def render_markdown(diff: FleetDiff, *, max_bytes: int = DEFAULT_MAX_BYTES, rerun_hint: str = "") -> str:
    """The PR comment for ``diff``, at most ``max_bytes`` bytes of UTF-8.

    Args:
        diff: what :func:`~gpufleet.diff.compare` returned.
        max_bytes: size limit; the report shortens itself to fit and says what it left out.
        rerun_hint: where the full report is (shown only when rows were left out).
    """
    for detail in _DETAIL_CAPS:
        text = _render(diff, _Budget(OPEN_ROWS, detail), rerun_hint)
        if _size(text) <= max_bytes:
            return text
    for open_rows in _OPEN_CAPS:
        text = _render(diff, _Budget(open_rows, 0), rerun_hint)
        if _size(text) <= max_bytes:
            return text
    # Only the verdict and the summary: always small, unless max_bytes is absurdly low.
    text = "\n".join([*_header(diff), "", *_summary(diff), "",
                      "_Details left out to fit the size limit; see `gpufleet diff --format json`._", ""])
    if _size(text) <= max_bytes:
        return text
    return f"### {diff.verdict_line()}\n"[: max(0, max_bytes // 4)]


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _render(diff: FleetDiff, budget: _Budget, rerun_hint: str) -> str:
    lines = [*_header(diff), "", *_summary(diff), ""]
    lines += _violations(diff, budget)
    lines += _workloads(diff, budget)
    lines += _sites(diff, budget)
    lines += _moves(diff, budget)
    if budget.omitted:
        where = rerun_hint or "run `gpufleet diff` with `--format json` for every row"
        lines += [f"> ✂️ Shortened to fit a GitHub comment: {budget.omitted:,} row"
                  f"{'s' if budget.omitted != 1 else ''} left out ({where}).", ""]
    as_of = diff.head.as_of or diff.base.as_of
    runway = (f" · runway: days until the forecast at the plan's confidence outgrows the capacity left after "
              f"the declared losses, from {as_of.isoformat()}" if as_of and (diff.base.runway or diff.head.runway)
              else "")
    lines.append("<sub>gpufleet diff · cost at list price × 730 h/month · power at maximum pool size, "
                 f"facility side (IT load × PUE) · headroom: capacity above forecast demand{runway}</sub>")
    return "\n".join(lines) + "\n"


def _header(diff: FleetDiff) -> list[str]:
    lines = [f"### {diff.verdict_line()}", "",
             f"Stack {fmt.code(diff.stack)}: base {_where(diff.base)} → head {_where(diff.head)}"]
    for side in (diff.base, diff.head):
        if side.status == "infeasible":
            why = fmt.cell(side.error or "", 600)
            lines += ["", f"> ⚠️ {side.label.capitalize()} has no feasible placement: {why}"]
    return lines


def _where(side: Side) -> str:
    note = {"absent": " (no such stack: empty)", "infeasible": " (infeasible)"}.get(side.status, "")
    return f"{fmt.code(side.source)}{note}"


def _summary(diff: FleetDiff) -> list[str]:
    def gpus(side: Side) -> str:
        return fmt.gpus_by_model(side.gpus_by_model) if side.plan else "—"

    scale = max(diff.power_mw.base, diff.power_mw.head)
    def power(side: Side, value: float) -> str:
        return "—" if side.status == "infeasible" else fmt.mw(value, scale=scale)

    def cost(side: Side, value: float) -> str:
        return "—" if side.status == "infeasible" else fmt.usd(value)

    if diff.comparable:
        gpu_change = ", ".join(f"{d.change:+,.0f} {m}" for m, d in diff.gpus_by_model.items() if d.change) or "0"
        power_change = fmt.mw(diff.power_mw.change, signed=True, scale=scale)
        cost_change = fmt.usd(diff.usd_per_month.change, signed=True)
    else:
        gpu_change = power_change = cost_change = "—"
    rows = [
        "| fleet | base | head | change |",
        "| --- | --: | --: | --: |",
        f"| GPUs | {gpus(diff.base)} | {gpus(diff.head)} | {gpu_change} |",
        f"| power, facility (MW) | {power(diff.base, diff.power_mw.base)} | "
        f"{power(diff.head, diff.power_mw.head)} | {power_change} |",
        f"| cost / month | {cost(diff.base, diff.usd_per_month.base)} | {cost(diff.head, diff.usd_per_month.head)} | "
        f"{cost_change} |",
        f"| policy | {_policy_cell(diff.base)} | {_policy_cell(diff.head)} | {_policy_change(diff)} |",
    ]
    return rows


def _policy_cell(side: Side) -> str:
    if side.status == "absent":
        return "—"
    if side.status == "infeasible":
        return "🚫 infeasible"
    if side.violations is None:
        return "not evaluated"
    mandatory, advisory = len(side.mandatory), len(side.advisory)
    if not mandatory and not advisory:
        return "🚫 blocked" if side.blocked else "✅ pass"
    parts = []
    if mandatory:
        parts.append(f"{mandatory} mandatory")
    if advisory:
        parts.append(f"{advisory} advisory")
    return f"{'🚫' if side.blocked else '⚠️'} {', '.join(parts)}"


def _policy_change(diff: FleetDiff) -> str:
    new = sum(1 for m in diff.violations if m.new)
    parts = []
    if new:
        parts.append(f"{new} new")
    if diff.resolved:
        parts.append(f"{len(diff.resolved)} resolved")
    return ", ".join(parts) or "—"


# --- policy ---------------------------------------------------------------------------------------


def _violations(diff: FleetDiff, budget: _Budget) -> list[str]:
    head = diff.head
    if head.status != "present":
        return []
    if head.violations is None:
        return ["#### Policy", "", "Policies were not evaluated for head.", ""]
    lines = ["#### Policy violations on head", ""]
    if not diff.violations:
        lines += ["None. ✅", ""]
    else:
        header = ["| | enforcement | policy | resource | message |", "| --- | --- | --- | --- | --- |"]
        rows = [_violation_row(m) for m in diff.violations]
        lines += budget.table(header, rows, lambda n: f"{n} more violation{'s' if n != 1 else ''}")
    if diff.resolved:
        rows = [f"| {fmt.cell(v.enforcement)} | {fmt.code(v.policy)} | {_resource(v)} | {fmt.cell(v.message)} |"
                for v in diff.resolved]
        kept = budget.take(rows, collapsed=True)
        if kept:
            plural = "s" if len(rows) != 1 else ""
            lines += _details(f"✅ {len(rows)} violation{plural} on base resolved by this change",
                              ["| enforcement | policy | resource | message |", "| --- | --- | --- | --- |", *kept])
    return lines


def _violation_row(m: MarkedViolation) -> str:
    v = m.violation
    mark = "🆕 new" if m.new else ""
    level = f"🚫 {v.enforcement}" if v.mandatory else fmt.cell(v.enforcement)
    return f"| {mark} | {level} | {fmt.code(v.policy)} | {_resource(v)} | {fmt.cell(v.message)} |"


def _resource(v: Violation) -> str:
    return fmt.cell(fmt.resource(v.resource, v.resource_name), 120)


# --- workloads ------------------------------------------------------------------------------------


_ROLE_TITLES = {"training": ("Training runs", "run"), "inference": ("Inference services", "service")}


def _workloads(diff: FleetDiff, budget: _Budget) -> list[str]:
    if not diff.comparable:
        which = " and ".join(s.label for s in (diff.base, diff.head) if s.status == "infeasible")
        return ["#### Workloads and sites", "",
                f"Not compared: {which} has no feasible placement, so there is no plan to set against the other.", ""]
    if not diff.workloads:
        return []
    changed = diff.changed_workloads
    unchanged = [w for w in diff.workloads if w.change == "unchanged"]
    runway = bool(diff.base.runway or diff.head.runway)
    lines = [f"#### Workloads: {len(changed)} of {len(diff.workloads)} changed", ""]
    for role in ("training", "inference"):
        mine = sorted((w for w in changed if w.role == role), key=_importance)
        if not mine:
            continue
        title, noun = _ROLE_TITLES[role]
        header = _workload_header(role, noun, runway)
        rows = [_workload_row(w, runway) for w in mine]
        lines += [f"**{title}**", "", *budget.table(header, rows, lambda n: f"{n} more changed {noun}s")]
    if unchanged:
        inner: list[str] = []
        for role in ("training", "inference"):
            mine = [w for w in unchanged if w.role == role]
            if not mine:
                continue
            title, noun = _ROLE_TITLES[role]
            kept = budget.take([_workload_row(w, runway) for w in mine], collapsed=True)
            if kept:
                inner += [f"**{title}**", "", *_workload_header(role, noun, runway), *kept, ""]
        summary = f"{len(unchanged)} unchanged workload{'s' if len(unchanged) != 1 else ''}"
        lines += _details(summary, inner) if inner else [f"{summary} (rows left out).", ""]
    return lines


def _importance(w: WorkloadDelta) -> tuple[int, int, str]:
    """Short of demand first, then largest GPU change, then by name."""
    return (0 if w.short else 1, -abs(w.gpus_change), w.name)


def _workload_header(role: str, noun: str, runway: bool = False) -> list[str]:
    """The table header; with ``runway``, inference services get a runway · order-by column."""
    if role == "inference" and runway:
        return [f"| {noun} | GPUs | demand at horizon (tok/s) | capacity at max (tok/s) | headroom | runway · order by "
                "| placement |", "| --- | --: | --: | --: | --: | --: | --- |"]
    if role == "inference":
        return [f"| {noun} | GPUs | demand at horizon (tok/s) | capacity at max (tok/s) | headroom | placement |",
                "| --- | --: | --: | --: | --: | --- |"]
    return [f"| {noun} | GPUs | compute (FLOP) | days at planned size / deadline | headroom | placement |",
            "| --- | --: | --: | --: | --: | --- |"]


def _workload_row(w: WorkloadDelta, runway: bool = False) -> str:
    b, h = w.base, w.head
    any_side = h or b
    assert any_side is not None
    name = fmt.code(w.name)
    gpu = any_side.gpu if not (b and h and b.gpu != h.gpu) else f"{b.gpu} → {h.gpu}"
    if w.change == "added":
        name += " 🆕"
    elif w.change == "removed":
        name = f"~~{name}~~ removed"
    first = f"{name} · {gpu}"
    gpus = _pair(b.gpus if b else None, h.gpus if h else None, fmt.count, delta=True)
    if w.role == "inference":
        demand = _pair(b.demand_tokens_per_s if b else None, h.demand_tokens_per_s if h else None, fmt.rate)
        day = any_side.horizon_day
        demand += f" (day {fmt.days(day)})" if day else ""
        capacity = _pair(b.capacity_tokens_per_s if b else None, h.capacity_tokens_per_s if h else None, fmt.rate)
        middle = f"{demand} | {capacity}"
    else:
        compute = _pair(b.flops if b else None, h.flops if h else None, lambda x: f"{x:.2e}")
        planned = _pair(b.days_needed if b else None, h.days_needed if h else None, fmt.days)
        deadline = _pair(b.deadline_days if b else None, h.deadline_days if h else None, fmt.days)
        middle = f"{compute} | {planned} / {deadline} d"
    headroom = _pair(_headroom(b) if b else None, _headroom(h) if h else None, str)
    if w.short:
        headroom += " ⚠️ short"
    if runway and w.role == "inference":
        headroom += " | " + _pair(b.runway.label() if b and b.runway else None,
                                  h.runway.label() if h and h.runway else None, str)
    place = _placement(b, h)
    return f"| {first} | {gpus} | {middle} | {headroom} | {place} |"


def _headroom(f: WorkloadFigures) -> str:
    if f.headroom_pct is None:
        return "—"
    gpus = fmt.count(f.headroom_gpus, signed=True)
    return f"{fmt.pct(f.headroom_pct)} ({gpus} GPU{'' if gpus in ('+1', '-1') else 's'})"


def _placement(b: WorkloadFigures | None, h: WorkloadFigures | None) -> str:
    def where(f: WorkloadFigures) -> str:
        return ", ".join(f"{p.site} ({p.instance_type}{p.spot_label})" for p in f.placements) or "—"

    if b and h and [p.key for p in b.placements] != [p.key for p in h.placements]:
        return f"{fmt.cell(where(b), 80)} → {fmt.cell(where(h), 80)}"
    f = h or b
    return fmt.cell(where(f), 120) if f else "—"


def _pair(base: object, head: object, show: object, *, delta: bool = False) -> str:
    """``a`` when equal, ``a → b`` when changed (``(+n)`` with ``delta``), ``— → b`` when new."""
    render = show  # a callable; typed loosely so the small formatters above fit
    b = "—" if base is None else render(base)  # type: ignore[operator]
    h = "—" if head is None else render(head)  # type: ignore[operator]
    if b == h:
        return h
    text = f"{b} → {h}"
    if delta:
        change = (head or 0) - (base or 0)  # type: ignore[operator]
        text += f" ({fmt.count(change, signed=True)})"
    return text


# --- sites ----------------------------------------------------------------------------------------


def _sites(diff: FleetDiff, budget: _Budget) -> list[str]:
    if not diff.sites:
        return []
    changed = list(diff.changed_sites)
    unchanged = [s for s in diff.sites if s.change == "unchanged"]
    header = ["| site | GPUs | power, facility (MW) | of envelope | cost / month |",
              "| --- | --: | --: | --: | --: |"]
    lines = [f"#### Sites: {len(changed)} of {len(diff.sites)} changed", ""]
    if changed:
        lines += budget.table(header, [_site_row(s) for s in changed], lambda n: f"{n} more changed sites")
    if unchanged:
        kept = budget.take([_site_row(s) for s in unchanged], collapsed=True)
        summary = f"{len(unchanged)} unchanged site{'s' if len(unchanged) != 1 else ''}"
        lines += _details(summary, [*header, *kept]) if kept else [f"{summary} (rows left out).", ""]
    return lines


def _site_row(s: SiteDelta) -> str:
    b, h = s.base, s.head
    name = f"{fmt.code(s.name)} · {fmt.cell(s.cloud)} {fmt.cell(s.region)}"
    if s.change == "added":
        name += " 🆕"
    elif s.change == "removed":
        name = f"~~{name}~~ removed"
    models = sorted(set(b.gpus_by_model if b else {}) | set(h.gpus_by_model if h else {}))
    gpu_parts = []
    for m in models:
        nb = b.gpus_by_model.get(m, 0) if b else 0
        nh = h.gpus_by_model.get(m, 0) if h else 0
        gpu_parts.append(f"{_pair(nb, nh, fmt.count, delta=True)} {m}")
    gpus = "<br>".join(gpu_parts) or "0"
    scale = max(b.power_mw if b else 0.0, h.power_mw if h else 0.0)
    power = _pair(b.power_mw if b else None, h.power_mw if h else None, lambda x: fmt.mw(x, scale=scale))
    pue = (h.pue if h and h.pue is not None else b.pue if b else None)
    if pue is not None:
        power += f" (PUE {pue:g})"
    envelope = _pair(f"{b.envelope_used_pct:.0f}%" if b else None, f"{h.envelope_used_pct:.0f}%" if h else None, str)
    either = h or b
    env_mw = either.envelope_mw if either is not None else 0.0
    envelope += f" of {env_mw:g} MW"
    if h and h.envelope_used_pct > 100.0 + 1e-9:
        envelope += " ⚠️"
    cost = _pair(b.usd_per_month if b else None, h.usd_per_month if h else None, fmt.usd)
    if b and h and fmt.usd(b.usd_per_month) != fmt.usd(h.usd_per_month):
        cost += f" ({fmt.usd(h.usd_per_month - b.usd_per_month, signed=True)})"
    return f"| {name} | {gpus} | {power} | {envelope} | {cost} |"


# --- moves ----------------------------------------------------------------------------------------


def _moves(diff: FleetDiff, budget: _Budget) -> list[str]:
    if not diff.moves:
        return []
    header = ["| workload | from | to |", "| --- | --- | --- |"]
    rows = [_move_row(m) for m in diff.moves]
    return [f"#### Placement moves: {len(rows)}", "", *budget.table(header, rows, lambda n: f"{n} more moves")]


def _move_row(m: Move) -> str:
    def places(ps: tuple[object, ...]) -> str:
        return "<br>".join(fmt.cell(p.label(), 160) for p in ps) or "—"  # type: ignore[attr-defined]

    return f"| {fmt.code(m.workload)} ({m.role}) | {places(m.before)} | {places(m.after)} |"


def _details(summary: str, body: list[str]) -> list[str]:
    while body and body[-1] == "":
        body = body[:-1]
    return ["<details>", f"<summary>{fmt.cell(summary)}</summary>", "", *body, "", "</details>", ""]

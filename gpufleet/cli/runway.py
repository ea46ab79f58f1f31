"""``gpufleet runway``: how long a stack's plan lasts under its forecast's range, and when to order
more (``docs/runway.md``). No Pulumi, no credentials."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import click
from rich.table import Table

from gpufleet.cli._output import console, fmt_num, print_json
from gpufleet.cli._params import IsoDate
from gpufleet.errors import EXIT_BLOCKED
from gpufleet.runway import ForecastRunway, RunwayReport

_STATUS = {"ok": "[green]ok[/]", "order_now": "[yellow]order now[/]", "short": "[red]short[/]"}


@click.command()
@click.option("--stack", "stack_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Stack config file, e.g. stacks/Pulumi.prod.yaml (its plan is the capacity judged).")
@click.option("--as-of", "as_of", type=IsoDate(), default=None,
              help="The day the runway counts from (default: today); each service's peak_tokens_per_s is "
                   "taken as its peak on that day.")
@click.option("--json", "as_json", is_flag=True,
              help="Print as_of, confidence, workloads and sites as JSON (an infinite runway is null).")
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.svg",
              help="Also draw each service's demand fan against its capacity, order-by date marked, to this SVG file.")
def runway(stack_file: Path, as_of: datetime.date | None, as_json: bool, chart_path: Path | None) -> None:
    """Days until each service's forecast (every quantile and scenario) outgrows the planned capacity
    after its declared zone and site losses, the date it runs out and the date more must be ordered
    by (run-out date minus lead time); each training run's slack; each site's power and quota runway.

    Status at the plan's confidence (plan_confidence): ok (order-by date more than 30 days away),
    order_now (within 30 days, but it runs out after capacity ordered today lands) or short.

    Exit codes: 0 every workload ok, 2 bad input, 3 any workload order_now or short (or no feasible
    placement).
    """
    from gpufleet.outputs import check_outputs, write_atomic
    from gpufleet.plan import build_plan
    from gpufleet.runway import runway_chart, runway_report
    from gpufleet.stackfile import load_stack

    outputs = {"--chart": chart_path}
    suffixes = {"--chart": (".svg", ".png")}
    check_outputs(outputs, [stack_file], suffixes=suffixes, create_parents=True)
    stack, spec = load_stack(stack_file)
    histories = [stack_file.parent / s.history for s in spec.inference if s.history]
    check_outputs(outputs, [stack_file, *histories], suffixes=suffixes, create_parents=True)
    report = runway_report(build_plan(spec, stack), spec, as_of=as_of or datetime.date.today())
    if chart_path is not None:
        from gpufleet.chart import ChartData, chart_bytes

        panels = runway_chart(report) or (ChartData(title=f"{stack}: runway", y_label="tokens/s", series=(),
                                                    note="no inference services"),)
        write_atomic(chart_path, chart_bytes(panels, chart_path.suffix.lstrip(".").lower() or "svg"))
    if as_json:
        print_json(report.to_dict())
    else:
        render_runway(report, stack)
    if report.exit_code != 0:
        # SystemExit rather than ctx.exit: with standalone_mode=False click returns ctx.exit's code.
        raise SystemExit(EXIT_BLOCKED)


def _days(value: float) -> str:
    return "never" if not math.isfinite(value) else f"{value:,.1f}"


def _date(day: datetime.date | None) -> str:
    return "—" if day is None else day.isoformat()


def render_runway(report: RunwayReport, stack: str) -> None:
    """The report as tables: services (the plan's confidence first, then each quantile and
    scenario), training runs, sites."""
    out = console()
    services = Table(title=f"gpufleet runway: {stack}, as of {report.as_of.isoformat()}, "
                           f"at {report.confidence} (the plan's confidence)")
    for col in ("service", "forecast", "growth/month", "capacity tok/s", "runway days", "runs out", "order by",
                "status"):
        services.add_column(col, justify="right" if col in {"growth/month", "capacity tok/s", "runway days"}
                            else "left")

    def row(name: str, e: ForecastRunway, capacity: str, status: str) -> None:
        services.add_row(name, e.name, f"{e.growth_per_month:.1%}", capacity, _days(e.runway_days),
                         _date(e.runs_out_on), _date(e.order_by), status)

    for s in report.services:
        row(s.name, s.confidence, fmt_num(s.capacity_tokens_per_s), _STATUS[s.status])
        for e in s.scenarios:
            if e is not s.confidence:
                row("", e, "", "")
    if report.services:
        out.print(services)
    if report.training:
        runs = Table(title="Training runs: slack against the deadline at the planned size")
        for col in ("run", "deadline days", "days at planned size", "slack days", "status"):
            runs.add_column(col, justify="left" if col in {"run", "status"} else "right")
        for t in report.training:
            runs.add_row(t.name, f"{t.deadline_days:g}", f"{t.days_at_planned_size:,.1f}", f"{t.slack_days:,.1f}",
                         _STATUS[t.status])
        out.print(runs)
    sites = Table(title=f"Sites: days until the envelope / quota is passed as services grow at {report.confidence}")
    for col in ("site", "power runway days", "quota runway days"):
        sites.add_column(col, justify="left" if col == "site" else "right")
    for site in report.sites:
        sites.add_row(site.name, _days(site.power_runway_days), _days(site.quota_runway_days))
    out.print(sites)
    due = [w for w in report.workloads if w.status != "ok"]
    if not due:
        out.print(f"Every workload ok ({len(report.workloads)}): no order due within 30 days.")
    for s in report.services:
        if s.status == "order_now":
            out.print(f"{s.name}: order by {_date(s.order_by)} ({s.lead_time_days:g}-day lead time); "
                      f"runs out on {_date(s.confidence.runs_out_on)}", markup=False, highlight=False)
        elif s.status == "short":
            out.print(f"{s.name}: short: runs out on {_date(s.confidence.runs_out_on)}, before capacity ordered "
                      f"today lands ({s.lead_time_days:g}-day lead time)", markup=False, highlight=False)
    for t in report.training:
        if t.status == "short":
            out.print(f"{t.name}: short: takes {t.days_at_planned_size:,.1f} days of {t.deadline_days:g} allowed",
                      markup=False, highlight=False)

"""``gpufleet backtest``: would this plan have seen the crunch coming? Replays a demand history.

Thin: load the stack, plan it once (for each service's instance type, price and zones), read the
histories, replay (:mod:`gpufleet.backtest`), render a table or JSON. No Pulumi.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from gpufleet.cli._output import console, fmt_num, print_json
from gpufleet.cli._params import finite

if TYPE_CHECKING:
    from gpufleet.backtest import BacktestReport, Outcome


def _quantile(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from gpufleet.errors import SpecError
    from gpufleet.forecast import quantile_level

    try:
        quantile_level(value, loc="--confidence")
    except SpecError as exc:
        raise click.BadParameter(str(exc.issues[0]), ctx=ctx, param=param) from None
    return value


@click.command()
@click.option("--stack", "stack_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Stack config file; every inference service in it is replayed.")
@click.option("--history", "history_path", type=click.Path(path_type=Path), required=True, metavar="DIR_OR_CSV",
              help="A directory holding <service>.csv per inference service, or one CSV for a one-service "
                   "stack (columns date,peak_tokens_per_s).")
@click.option("--confidence", default="p90", show_default=True, callback=_quantile, metavar="pNN",
              help="The quantile the runway strategy applies runway-covers-lead-time at (it plans at the "
                   "stack's plan_confidence, as gpufleet plan).")
@click.option("--margin-days", type=finite(ge=0, le=3650), default=30.0, show_default=True,
              help="The runway policy's margin: runway must be at least the lead time plus this.")
@click.option("--warmup-months", type=click.IntRange(min=1, max=120), default=3, show_default=True,
              help="Months of history known before the first re-plan.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON (every order and re-plan).")
def backtest(stack_file: Path, history_path: Path, confidence: str, margin_days: float, warmup_months: int,
             as_json: bool) -> None:
    """Replay a demand history month by month: each month re-plans with what was known then
    through the service's own forecast (a `history:` service re-fits the history so far; declared
    quantiles keep their growth, from the last peak observed), orders land after the lead time,
    and every day is judged against the capacity then serving. Two strategies side by side: the
    point forecast (p50), and the stack's own plan (its plan_confidence) with the
    runway-covers-lead-time policy at --confidence.

    Each re-plan plans as `gpufleet plan` does: the sizing functions and the zone and site loss
    margins, on the instance type and zones the stack's plan chooses (placement is not what a
    backtest tests); declared scenarios are runways beside the plan, as in `gpufleet runway`.

    The stack's plan is checked as `gpufleet plan` checks it (what its clouds refuse, the stack's
    gpufleet:images and gpufleet:sshPublicKey) before any replay.

    Exit codes: 0 done (however many days ran short), 2 bad input (stack, history file:line, flags,
    or a plan its clouds refuse), 3 the stack itself has no feasible placement (as `gpufleet plan`).
    """
    from gpufleet.backtest import read_histories, run_backtest, strategies
    from gpufleet.checks import preview_settings
    from gpufleet.plan import build_plan
    from gpufleet.stackfile import read_stack

    stack = read_stack(stack_file)
    spec = stack.spec
    histories = read_histories(history_path, [w.name for w in spec.inference])
    # checked as `gpufleet plan` checks it: a plan its clouds refuse is bad input, not a replay
    plan = build_plan(spec, stack.name, settings=preview_settings(stack.config))
    report = run_backtest(spec, plan, histories, strategies(confidence, margin_days), warmup_months=warmup_months)
    if as_json:
        print_json(report.to_json())
        return
    render(report)


def render(report: BacktestReport) -> None:
    """Each service's strategies side by side, a legend, and the difference the policy makes."""
    out = console()
    for svc in report.services:
        f = svc.facts
        first = svc.outcomes[0]
        table = Table(title=f"{f.name}, {first.start} to {first.end}")
        table.add_column("")
        for o in svc.outcomes:
            table.add_column(o.strategy.name, justify="right")
        rows: list[tuple[str, Callable[[Outcome], str]]] = [
            ("days short", lambda o: fmt_num(o.days_short)),
            *([("days short after losses", lambda o: fmt_num(o.days_short_after_losses))]
              if f.zone_losses or f.site_losses else []),
            *([("re-plans short in a scenario", lambda o: f"{o.scenario_short_replans} of {len(o.replans)}")]
              if f.scenarios else []),
            ("first short day", lambda o: str(o.first_short_on or "—")),
            ("longest run short (days)", lambda o: fmt_num(o.longest_short_run_days)),
            ("unserved token-hours", lambda o: fmt_num(o.unserved_token_hours)),
            ("orders", lambda o: fmt_num(len(o.orders))),
            ("nodes at start → end", lambda o: f"{o.initial_nodes} → {o.final_nodes}"),
            ("GPU-hours provisioned", lambda o: fmt_num(o.provisioned_gpu_hours)),
            ("GPU-hours over-provisioned", lambda o: fmt_num(o.over_provisioned_gpu_hours)),
            ("cost at list price", lambda o: "—" if o.usd is None else f"${o.usd:,.0f}"),
        ]
        for label, show in rows:
            table.add_row(label, *(show(o) for o in svc.outcomes))
        out.print(table)
        method = "its history, re-fitted at each re-plan" if f.fits_history else "its declared forecast"
        losses = [f"{n} {kind} loss{'es' if n != 1 else ''}" for n, kind in ((f.zone_losses, "zone"),
                                                                           (f.site_losses, "site")) if n]
        out.print(f"{f.name}: {f.instance_type} ({f.tokens_per_s_per_node:,.0f} tokens/s per node), lead time "
                  f"{f.lead_time_days:g} days, horizon {f.horizon_days:g} days, growth from {method}, "
                  f"{'surviving ' + ' and '.join(losses) if losses else 'no loss margin'}",
                  markup=False, highlight=False)
    for s in report.strategies:
        out.print(f"{s.name}: {s.describe()}", markup=False, highlight=False)
    line = comparison(report)
    if line:
        out.print(line, markup=False, highlight=False)


def comparison(report: BacktestReport) -> str:
    """One line: what the second strategy changes against the first, over every service."""
    if len(report.strategies) != 2:
        return ""
    first, second = (s.name for s in report.strategies)
    totals = report.totals()
    a, b = totals[first], totals[second]
    text = f"{second} vs {first}: {b['days_short'] - a['days_short']:+,} days short"
    if a["usd"] is not None and b["usd"] is not None:
        extra = b["usd"] - a["usd"]
        share = f" ({extra / a['usd']:+.1%})" if a["usd"] else ""
        text += f", {'+' if extra >= 0 else '-'}${abs(extra):,.0f}{share} at list price"
    return text + "."

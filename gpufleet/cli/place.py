"""``gpufleet place``: solve a placement problem from a JSON file and print the placement or why none fits.

Exit codes: 0 a placement (optimal, or the best found within the time limit), 2 bad input (malformed
JSON or a field that does not validate; every error is listed), 3 no placement (infeasible, with the
binding constraints and the smallest relaxation, or none found within the time limit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from gpufleet.cli._output import console, fmt_num, print_json
from gpufleet.cli._params import finite
from gpufleet.inputs import parse_json, read_text
from gpufleet.errors import EXIT_BLOCKED, Issue, SpecError

if TYPE_CHECKING:
    from gpufleet.placement import PlacementProblem, PlacementResult


def _read_json(path: Path) -> object:
    """The problem file, read bounded (a regular file, 4 MiB, UTF-8, no duplicate keys)."""

    def malformed(exc: json.JSONDecodeError) -> SpecError:
        return SpecError(Issue(f"{path}:{exc.lineno}:{exc.colno}", f"malformed JSON: {exc.msg}", "a JSON object"))

    return parse_json(read_text(path, what=str(path)), source=str(path), what=str(path), syntax=malformed)


@click.command()
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Problem JSON: sites, pools and an optional carbon_price_per_tonne (see docs/placement.md).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
@click.option("--time-limit-s", type=finite(gt=0, le=3600), default=10.0, show_default=True,
              help="HiGHS time limit for the placement solve, in seconds.")
@click.option("--mip-rel-gap", type=finite(ge=0, le=1), default=0.001, show_default=True,
              help="Relative optimality gap at which HiGHS stops.")
def place(input_path: Path, as_json: bool, time_limit_s: float, mip_rel_gap: float) -> None:
    """Place pools on sites at minimum cost under power, quota, zone and survival limits.

    Solves a mixed-integer program with HiGHS. When nothing fits, says which sites' power or which
    GPU quotas bind and the smallest relaxation that would make the problem feasible.
    """
    from gpufleet.placement import parse_problem, solve

    source = str(input_path)
    problem = parse_problem(_read_json(input_path), source=source)
    result = solve(problem, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, source=source)
    if as_json:
        print_json(result.to_json())
    else:
        _render(problem, result)
    if not result.ok:
        # SystemExit rather than ctx.exit: with standalone_mode=False click returns ctx.exit's code
        # from main() instead of raising it.
        raise SystemExit(EXIT_BLOCKED)


def _render(problem: PlacementProblem, result: PlacementResult) -> None:
    out = console()
    if not result.ok:
        out.print(f"[bold red]{result.status}[/]: no placement")
        out.print(result.explanation, markup=False, highlight=False)
        return
    roles = {p.name: p.role for p in problem.pools}
    table = Table(title="Placement")
    for name, justify in [("pool", "left"), ("role", "left"), ("site", "left"), ("zone", "left"),
                          ("instance type", "left"), ("nodes", "right")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for a in result.assignments:
        table.add_row(a.pool, roles[a.pool], a.site, a.zone, a.instance_type, fmt_num(a.nodes))
    out.print(table)
    sites = Table(title="Site power")
    for name in ("site", "drawn MW", "envelope MW", "used"):
        sites.add_column(name, justify="left" if name == "site" else "right")
    for site in problem.sites:
        drawn = result.site_power_mw.get(site.name, 0.0)
        if drawn <= 0:
            continue
        share = f"{drawn / site.power_mw:.0%}" if site.power_mw > 0 else "—"
        sites.add_row(site.name, fmt_num(drawn, 3), fmt_num(site.power_mw, 3), share)
    out.print(sites)
    gap = "—" if result.mip_gap is None else f"{result.mip_gap:.3%}"
    out.print(
        f"{result.status}: cost {fmt_num(result.cost_per_hour, 2)} USD/hour, gap {gap}, "
        f"solved in {result.solve_seconds:.2f} s",
        highlight=False,
    )
    if result.explanation:
        out.print(result.explanation, markup=False, highlight=False)

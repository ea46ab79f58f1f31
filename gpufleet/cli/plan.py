"""``gpufleet plan``: the sized, placed and checked plan of a stack, as a table or JSON. No Pulumi."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from gpufleet.checks import preview_settings
from gpufleet.cli._output import console, fmt_num, print_json
from gpufleet.diff.figures import floor_after_losses_tokens_per_s
from gpufleet.plan import FleetPlan, build_plan
from gpufleet.stackfile import read_stack, size_warning


@click.command()
@click.option("--stack", "stack_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Stack config file, e.g. stacks/Pulumi.dev.yaml (its gpufleet:fleet object, and the files "
                   "gpufleet:fleetFiles names, are planned).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (one entry per pool, with sizing inputs).")
def plan(stack_file: Path, as_json: bool) -> None:
    """Size every workload from its demand and place every pool under power, quota and price.

    The plan is checked as `gpufleet preview` checks it: what its clouds refuse, and the stack's
    gpufleet:images and gpufleet:sshPublicKey.

    Exit codes: 0 planned, 2 bad stack file (or a plan its clouds refuse), 3 no placement satisfies
    the constraints.
    """
    stack = read_stack(stack_file)
    warning = size_warning(stack)
    if warning:
        click.echo(warning, err=True)
    result = build_plan(stack.spec, stack.name, settings=preview_settings(stack.config))
    if as_json:
        print_json(result.to_json())
        return
    render_plan(result)


def render_plan(result: FleetPlan) -> None:
    out = console()
    pools = Table(title=f"gpufleet plan: {result.stack}")
    for col in ("pool", "role", "cloud", "site", "instance type", "zones", "nodes", "GPUs", "demand", "kW", "$/h"):
        pools.add_column(col, justify="right" if col in {"nodes", "GPUs", "kW", "$/h"} else "left")
    for p in result.pools:
        nodes = f"{p.min_nodes}–{p.nodes}" if p.role == "inference" else str(p.nodes)
        if p.spot_nodes:  # the spot share above the on-demand floor, priced at the spot price in $/h
            nodes += f" ({p.spot_nodes} spot)"
        if p.role == "training" and len(p.islands) > 1:  # fabric islands: no fabric between them
            nodes += f" ({'+'.join(map(str, p.islands))})"
        demand = (f"{p.demand_tokens_per_s:,.0f} tok/s" if p.role == "inference"
                  else f"{p.sizing.get('flops', 0):.2e} FLOPs")
        pools.add_row(p.name, p.role, p.cloud, p.site, p.instance_type, ",".join(p.zones), nodes,
                      fmt_num(p.gpus), demand, fmt_num(p.power_kw), fmt_num(p.usd_per_hour, 2))
    out.print(pools)
    for p in result.pools:
        for note in p.notes:
            out.print(f"Note: {p.name}: {note}", markup=False, highlight=False)
    workloads = Table(title="Workloads: demand against capacity")
    for col in ("workload", "role", "needs", "provisioned", "at horizon / deadline"):
        workloads.add_column(col)
    for w in result.workloads:
        if w.role == "inference":
            detail = (f"{w.demand_at_horizon_tokens_per_s:,.0f} tok/s at day {w.lead_time_days + w.horizon_days:g}; "
                      f"max carries {w.tokens_per_s_at_max:,.0f}; survives {w.survive_zone_losses} zone / "
                      f"{w.survive_site_losses} site loss(es)")
            floor = floor_after_losses_tokens_per_s(result, w)
            if floor is not None:  # what is left when the spot reclaim meets the worst declared loss
                detail += f"; after a spot reclaim during the worst loss carries {floor:,.0f}"
        else:
            detail = f"{w.days_at_planned_size:.1f} days of {w.deadline_days:g} allowed; {w.energy_mwh:,.0f} MWh"
        workloads.add_row(w.name, w.role, _nodes(w.nodes_needed), f"{_nodes(w.nodes_provisioned)} "
                          f"({w.gpus_provisioned} {w.gpu})", detail)
    out.print(workloads)
    sites = Table(title="Sites: power and quota")
    for col in ("site", "cloud", "region", "MW used", "envelope MW", "GPUs", "quota", "$/h"):
        sites.add_column(col)
    for s in result.sites:
        gpus = ", ".join(f"{n} {m}" for m, n in s.gpus_by_model.items()) or "—"
        quota = ", ".join(f"{n} {m}" for m, n in s.quota_gpus.items()) or "—"
        sites.add_row(s.name, s.cloud, s.region, f"{s.power_mw:.2f}", f"{s.envelope_mw:g}", gpus, quota,
                      fmt_num(s.usd_per_hour, 2))
    out.print(sites)
    out.print(f"Fleet: {result.gpus:,} GPUs, {result.power_mw:.2f} MW, ${result.usd_per_hour:,.0f}/h "
              f"(placement {result.placement.get('status')}, gap {result.placement.get('mip_gap')})")


def _nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"

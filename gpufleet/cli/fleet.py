"""``gpufleet fleet``: commands over many stacks at once. ``fleet check``: do the stacks fit their
shared sites together? No Pulumi, no credentials."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from gpufleet.errors import Issue, SpecError

EMIT_FLAG = "--emit-policy-config"
_BASE_HELP = "A policy config (floors, levels) merged into every file --emit-policy-config writes."
_BASE_DIR_HELP = ("Per-stack policy configs (<DIR>/<stack>.json, when present) merged into the files "
                  "--emit-policy-config writes.")


@click.group()
def fleet() -> None:
    """Fleets split over many stacks that share sites (see docs/fleets.md)."""


@fleet.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON: stacks[] and sites[].")
@click.option("--jobs", type=click.IntRange(min=1, max=256), default=None,
              help="Stacks planned at once, each in its own process (default: the CPU count).")
@click.option(EMIT_FLAG, "emit_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write each stack's policy config (<DIR>/<stack>.json: the other stacks' draw at its shared "
                   "sites) for `pulumi preview --policy-pack-config`.")
@click.option("--policy-config", "base_config", type=click.Path(dir_okay=False, path_type=Path), help=_BASE_HELP)
@click.option("--policy-config-dir", "base_config_dir", type=click.Path(file_okay=False, path_type=Path),
              help=_BASE_DIR_HELP)
def check(paths: tuple[Path, ...], as_json: bool, emit_dir: Path | None, base_config: Path | None,
          base_config_dir: Path | None, jobs: int | None) -> None:
    """Plan every stack and check power envelopes and GPU quotas of the sites they share.

    PATHS are stack files or directories of them (their Pulumi.*.yaml). Each stack is planned as
    `gpufleet plan` plans it (sizing and placement), several at once in separate processes; sites
    match by name across stacks, and their draws at full scale add up against the site's envelope
    and quotas.

    A stack with no feasible placement is named, and the sites are still summed over the others
    (each site it declares says its draw is not counted); --emit-policy-config then writes nothing.

    Exit codes: 0 every site fits, 2 bad input (a stack that does not validate, or one site declared
    differently in two stacks), 3 a site is over (or a stack has no feasible placement).
    """
    from gpufleet.outputs import check_outputs
    from gpufleet.shared_sites import check_fleet
    from gpufleet.stackset import check_policy_config_flags, expand_stacks, policy_config_for, worst_exit

    stacks = expand_stacks(paths, flag="PATHS")
    check_policy_config_flags(base_config, base_config_dir)
    bases = {s.name: policy_config_for(s, every=base_config, per_stack_dir=base_config_dir) for s in stacks}
    targets = {f"{EMIT_FLAG} ({s.name})": emit_dir / f"{s.name}.json" for s in stacks} if emit_dir else {}
    check_outputs(targets, [*(s.path for s in stacks), *bases.values()], create_parents=True)
    base = {name: _base_config(path) if path is not None else {} for name, path in bases.items()}
    draws = plan_stacks([s.path for s in stacks], jobs=jobs)
    failed = [d for d in draws if d.error]
    for draw in failed:
        click.echo(f"error: {draw.error}", err=True)
    bad = [d for d in failed if not d.infeasible]
    if bad:  # bad input: nothing printed or written
        raise SystemExit(worst_exit(d.exit_code for d in bad))
    result = check_fleet(draws)  # an infeasible stack: the rest is still summed, and it is named
    if emit_dir is not None and result.infeasible:
        click.echo(f"{EMIT_FLAG}: nothing written: the other stacks' draw at a shared site is unknown while "
                   f"{', '.join(d.stack for d in result.infeasible)} has no feasible placement", err=True)
    elif emit_dir is not None:
        _emit(result, emit_dir, base)
    if as_json:
        from gpufleet.cli._output import print_json

        print_json(result.to_json())
    else:
        _render(result)
    raise SystemExit(result.exit_code)


def plan_stacks(files: Sequence[Path], *, jobs: int | None = None) -> list[Any]:
    """Every stack planned (:func:`gpufleet.shared_sites.plan_stack`), in separate processes when
    there are several; results in the order of ``files``."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from gpufleet.shared_sites import plan_stack

    workers = min(jobs or os.cpu_count() or 1, len(files))
    say = _progress(len(files))
    if workers <= 1:
        out = []
        for file in files:
            out.append(plan_stack(file))
            say(out[-1].stack)
        return out
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(plan_stack, file): i for i, file in enumerate(files)}
        results: list[Any] = [None] * len(files)
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            say(results[futures[future]].stack)
    return results


def _progress(total: int) -> Any:
    done = [0]

    def say(stack: str) -> None:
        done[0] += 1
        if sys.stderr.isatty():
            click.echo(f"gpufleet fleet check: planned {stack} ({done[0]}/{total})", err=True)

    return say


def _base_config(path: Path) -> dict[str, Any]:
    """The policy config to merge into every emitted file (checked as the engine reads it)."""
    from gpufleet.engine import load_policy_config
    from gpufleet.inputs import load_json_file
    from gpufleet.shared_sites import POLICY_NAME

    load_policy_config(path)  # its shape, as `pulumi preview --policy-pack-config` reads it
    data = load_json_file(path, what="policy-config")
    if not isinstance(data, dict):
        return {}
    if POLICY_NAME in data:
        raise SpecError(Issue(POLICY_NAME, "is written by `gpufleet fleet check`; the base config may not set it",
                              "leave it out of --policy-config"), source=str(path))
    return data


def _emit(result: Any, directory: Path, base: dict[str, dict[str, Any]]) -> None:
    from gpufleet.outputs import write_atomic
    from gpufleet.shared_sites import policy_configs

    directory.mkdir(parents=True, exist_ok=True)
    for stack, config in policy_configs(result).items():
        write_atomic(directory / f"{stack}.json", json.dumps({**base[stack], **config}, indent=2) + "\n")


def _render(result: Any) -> None:
    from rich.table import Table

    from gpufleet.cli._output import console

    out = console()
    table = Table(title=f"gpufleet fleet check: {_count(len(result.stacks), 'stack')}, "
                        f"{_count(len(result.sites), 'site')}")
    for col in ("site", "stacks", "MW used", "envelope MW", "GPUs", "quota", "status"):
        table.add_column(col, justify="right" if "MW" in col else "left")
    for site in result.sites:
        status = "[red]over[/]" if site.over else "[green]fits[/]"
        if site.not_counted and not site.over:
            status = f"[yellow]unknown[/] (without {', '.join(site.not_counted)})"
        table.add_row(site.name, ", ".join(sorted(site.draws)), f"{site.power_mw_used:,.2f}", f"{site.power_mw:g}",
                      ", ".join(f"{n:,} {m}" for m, n in site.gpus_used.items()) or "—",
                      ", ".join(f"{n:,} {m}" for m, n in site.quota_gpus.items()) or "—", status)
    out.print(table)
    for site in result.sites:
        for problem in site.problems():
            out.print(f"OVER {problem}", markup=False, highlight=False)
    for draw in result.infeasible:
        at = ", ".join(sorted(draw.sites)) or "no site"
        out.print(f"INFEASIBLE {draw.stack} ({draw.file}): no feasible placement; its draw at {at} is not counted "
                  "above", markup=False, highlight=False)
    over = [s.name for s in result.sites if s.over]
    if over:
        out.print(f"{len(over)} site(s) over: {', '.join(over)}", markup=False, highlight=False)
    elif result.infeasible:
        out.print("No site is over without the infeasible stack(s); with them the sums are unknown.",
                  markup=False, highlight=False)
    else:
        out.print("Every site fits.", markup=False, highlight=False)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"

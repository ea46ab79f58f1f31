"""``gpufleet deploy``: ``pulumi up`` for several stacks through Pulumi's Automation API, gated by the
policy pack, in parallel where stacks share no site (see :mod:`gpufleet.deploy`).

Exit codes: 0 every stack deployed (or, without ``--yes``, the plan printed), 2 bad input (a stack
that does not validate: nothing starts), 4 the Pulumi CLI is missing or too old (nothing starts),
otherwise the worst stack's: 1 an update failed, 3 an update was blocked by a mandatory policy.

``--format json`` prints one document on stdout instead of the tables (:func:`gpufleet.deploy.report_json`);
progress stays on stderr, and an error that stops everything (exit 2, 4) prints no document.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from gpufleet.deploy import Deployer, DeployTarget


@click.command()
@click.option("--stack", "stack_args", type=click.Path(path_type=Path), required=True, multiple=True,
              help="A stack file (stacks/Pulumi.prod.yaml); repeat it, or give a directory (every Pulumi.*.yaml).")
@click.option("--policy-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="One policy pack config for every stack.")
@click.option("--policy-config-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Per-stack policy configs, <dir>/<stack>.json when it exists [default: policies/config].")
@click.option("--jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="How many `pulumi up` run at once (default: the CPUs gpufleet may use).")
@click.option("--fail-fast", is_flag=True, help="After a stack fails, start no other.")
@click.option("--yes", is_flag=True, help="Deploy. Without it, print the plan (order, packs, configs) and stop.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: tables; json: one document with every stack, in order, and how each ended.")
def deploy(stack_args: tuple[Path, ...], policy_config: Path | None, policy_config_dir: Path | None,
           jobs: int | None, fail_fast: bool, yes: bool, fmt: str) -> None:
    """Run `pulumi up --policy-pack policies` for every stack, in parallel, in a safe order.

    Stacks run in the order given (a directory's by name); a stack waits for the earlier stacks it
    shares a site with (one power envelope, one quota) and is skipped when one of them failed.
    Every update runs the policy pack first: a mandatory violation stops that stack before it
    changes anything. Needs the Pulumi CLI, logged in, and each cloud's credentials.
    """
    from gpufleet.deploy import AutomationDeployer, plan_deploy
    from gpufleet.parallel import default_jobs
    from gpufleet.stackset import check_policy_config_flags, expand_stacks

    check_policy_config_flags(policy_config, policy_config_dir)
    targets = plan_deploy(expand_stacks(stack_args), policy_config=policy_config,
                          policy_config_dir=policy_config_dir)
    if not yes:
        _print_plan(targets, fmt)
        return
    raise SystemExit(_deploy(targets, AutomationDeployer(), jobs or default_jobs(), fail_fast, fmt))


def _print_plan(targets: list[DeployTarget], fmt: str) -> None:
    from rich.table import Table

    from gpufleet.cli._output import console, print_json
    from gpufleet.deploy import report_json

    if fmt == "json":
        print_json(report_json(targets, None, 0))
        return
    table = Table(title=f"gpufleet deploy: {len(targets)} stack{'' if len(targets) == 1 else 's'}, in this order",
                  title_justify="left")
    for name in ("stack", "after", "sites", "policy pack", "policy config"):
        table.add_column(name, overflow="fold")
    for t in targets:
        table.add_row(t.stack, ", ".join(t.after) or "—", ", ".join(t.sites), str(t.policy_pack),
                      str(t.policy_config) if t.policy_config else "—")
    out = console()
    out.print(table, highlight=False)
    out.print("nothing deployed: add --yes to run `pulumi up` for these stacks", highlight=False, soft_wrap=True)


def _deploy(targets: list[DeployTarget], deployer: Deployer, jobs: int, fail_fast: bool, fmt: str) -> int:
    from gpufleet.cli._multistack import Progress, SummaryRow, render_summary
    from gpufleet.cli._output import console, print_json
    from gpufleet.deploy import deploy as run_deploy
    from gpufleet.deploy import report_json
    from gpufleet.stackset import worst_exit

    progress = Progress("deploy", [t.stack for t in targets])
    with progress:
        results = run_deploy(targets, deployer, jobs=jobs, fail_fast=fail_fast, on_event=progress.event,
                             on_tick=progress.tick)
    code = worst_exit(r.outcome.exit_code if r.outcome.exit_code is not None else 4 for r in results)
    if fmt == "json":
        print_json(report_json(targets, results, code))
        return code
    rows = [SummaryRow(r.target.stack, r.outcome, None, r.summary or r.outcome.reason) for r in results]
    render_summary("deploy", rows, code, console())
    return code

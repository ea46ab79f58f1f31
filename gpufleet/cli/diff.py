"""``gpufleet diff``: the capacity report of a stack change, for a pull request. No credentials.

Thin: resolve the two stacks (files or ``REF:PATH``), plan and preview each side, compare, render
Markdown or JSON on stdout, optionally draw the chart.

Several stacks (``--stack`` repeated or a directory, with ``--base-ref``) run in parallel, one
``gpufleet diff`` process each (:mod:`gpufleet.cli._multistack`); the exit code is the worst stack's.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import click

from gpufleet.errors import EXIT_BLOCKED


@click.command()
@click.option("--base", "base_text", metavar="STACK",
              help="The stack before the change: a stack file, or REF:PATH read from git "
                   "(origin/main:stacks/Pulumi.prod.yaml). A PATH missing at REF is a new stack: an empty base.")
@click.option("--head", "head_text", metavar="STACK",
              help="The stack after the change: a stack file, or REF:PATH (missing at REF: a deleted stack).")
@click.option("--stack", "stack_args", type=click.Path(path_type=Path), multiple=True,
              help="Instead of --base/--head: a stack file (head) compared with the same path at --base-ref. "
                   "Repeat it, or give a directory, to compare several stacks in parallel.")
@click.option("--base-ref", metavar="REF", help="With --stack: the git ref of the base side, e.g. origin/main.")
@click.option("--policy-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Policy pack config (the demand floors), used for both sides.")
@click.option("--policy-config-dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --stack: each stack uses <dir>/<stack>.json when it exists (e.g. policies/config).")
@click.option("--format", "output_format", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True, help="Markdown is the PR comment; JSON has the same facts, every row.")
@click.option("--json-out", "json_path", type=click.Path(path_type=Path),
              help="Also write the JSON report to this file (one run gives the comment and the data). "
                   "With several stacks: a directory, one <stack>.json each.")
@click.option("--chart", "chart_path", type=click.Path(path_type=Path),
              help="Also draw forecast demand against base and head capacity to this SVG file. "
                   "With several stacks: a directory, one <stack>.svg each.")
@click.option("--chart-workload", default="fleet", show_default=True, metavar="NAME",
              help="What the chart shows: 'fleet' (every inference service, in GPUs) or one workload.")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="The date each service's runway and order-by date count from (default: today, UTC).")
@click.option("--max-bytes", type=click.IntRange(min=1000), default=60_000, show_default=True,
              help="Size limit of the Markdown report (GitHub rejects comments over 65,536 characters); "
                   "longer reports collapse and then leave out rows, and say so.")
@click.option("--output", "output", type=click.Path(file_okay=False, path_type=Path),
              help="With several stacks: write each stack's report to DIR/<stack>.md (or .json) instead of stdout.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="With several stacks: how many diffs run at once (default: the CPUs gpufleet may use).")
@click.pass_context
def diff(ctx: click.Context, base_text: str | None, head_text: str | None, stack_args: tuple[Path, ...],
         base_ref: str | None, policy_config: Path | None, policy_config_dir: Path | None, output_format: str,
         json_path: Path | None, chart_path: Path | None, chart_workload: str, as_of: datetime | None,
         max_bytes: int, output: Path | None, jobs: int | None) -> None:
    """Compare two versions of a stack: GPUs, nodes, demand, headroom and (services) runway and
    order-by date per workload; power, cost and load per site; placement moves; and the policy
    verdicts of head, the new ones marked.

    Both sides are planned and previewed offline (the Pulumi program under mocks, then the policy
    pack): no cloud credentials are needed.

    Exit codes: 0 head passes, 2 bad input, 3 head is blocked (a mandatory policy violation, or no
    feasible placement). With several stacks, the worst stack's: 2, then 1, then 3, then 0.
    """
    from gpufleet.cli._output import print_json
    from gpufleet.diff import compare, render_markdown
    from gpufleet.diff.sources import load_side, resolve
    from gpufleet.outputs import check_outputs, write_atomic
    from gpufleet.stackfile import stack_name
    from gpufleet.stackset import StackRef, check_policy_config_flags, is_many, policy_config_for

    check_policy_config_flags(policy_config, policy_config_dir)
    if stack_args:
        if base_text is not None or head_text is not None:
            raise click.UsageError("--stack cannot be used with --base/--head")
        if base_ref is None:
            raise click.UsageError("--stack needs --base-ref REF (the base side of each stack), e.g. origin/main")
        if is_many(stack_args) or output is not None:
            from gpufleet.cli._diff_many import diff_many

            day = as_of.date() if as_of else datetime.now(timezone.utc).date()  # one date for every stack
            raise SystemExit(diff_many(stack_args, base_ref, policy_config, policy_config_dir, output_format,
                                       output, json_path, chart_path, chart_workload, day, max_bytes, jobs))
        from gpufleet.cli._diff_many import base_and_head

        base_text, head_text = base_and_head(stack_args[0], base_ref)
        policy_config = policy_config_for(StackRef(stack_name(stack_args[0]), stack_args[0]), every=policy_config,
                                          per_stack_dir=policy_config_dir)
    elif base_ref is not None or policy_config_dir is not None or output is not None:
        raise click.UsageError("--base-ref, --policy-config-dir and --output go with --stack")
    for param in ctx.command.params:
        if param.name in ("base_text", "head_text") and ctx.params[param.name] is None and not stack_args:
            raise click.MissingParameter(ctx=ctx, param=param)
    assert base_text is not None and head_text is not None
    if chart_workload != "fleet" and chart_path is None:
        raise click.BadParameter("needs --chart FILE.svg", param_hint="--chart-workload")
    # Every output is checked before any work: a bad path fails now, not after two previews.
    stack_files = [Path(t) for t in (base_text, head_text) if Path(t).exists()]
    check_outputs({"--json-out": json_path, "--chart": chart_path}, [*stack_files, policy_config],
                  suffixes={"--chart": (".svg", ".png")}, create_parents=True)
    with tempfile.TemporaryDirectory(prefix="gpufleet-diff-") as tmp:
        work = Path(tmp)
        base_src = resolve(base_text, work, label="base")
        head_src = resolve(head_text, work, label="head")
        if base_src.path is None and head_src.path is None:
            raise click.BadParameter(f"neither {base_text} nor {head_text} exists", param_hint="--base/--head")
        day = as_of.date() if as_of else datetime.now(timezone.utc).date()  # one date for both sides
        base = load_side(base_src, "base", policy_config=policy_config, as_of=day)
        head = load_side(head_src, "head", policy_config=policy_config, as_of=day)
    result = compare(base, head)
    if chart_path is not None:
        from gpufleet.diff.chart import render_chart

        render_chart(base, head, chart_path, workload=chart_workload)
    if json_path is not None:
        write_atomic(json_path, json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    if output_format == "json":
        print_json(result.to_json())
    else:
        hint = "run `gpufleet diff --format json` for every row" if not chart_path else \
            "the JSON report (`--format json`) has every row"
        sys.stdout.write(render_markdown(result, max_bytes=max_bytes, rerun_hint=hint))
    if result.blocked:
        # SystemExit rather than ctx.exit: with standalone_mode=False click returns ctx.exit's code
        # from main() instead of raising it.
        raise SystemExit(EXIT_BLOCKED)

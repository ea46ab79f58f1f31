"""``gpufleet diff``: the capacity report of a stack change, for a pull request. No credentials.

Thin: resolve the two stacks (files or ``REF:PATH``), plan and preview each side, compare, render
Markdown or JSON on stdout, optionally draw the chart.
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
@click.option("--base", "base_text", required=True, metavar="STACK",
              help="The stack before the change: a stack file, or REF:PATH read from git "
                   "(origin/main:stacks/Pulumi.prod.yaml). A PATH missing at REF is a new stack: an empty base.")
@click.option("--head", "head_text", required=True, metavar="STACK",
              help="The stack after the change: a stack file, or REF:PATH (missing at REF: a deleted stack).")
@click.option("--policy-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Policy pack config (the demand floors), used for both sides.")
@click.option("--format", "output_format", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True, help="Markdown is the PR comment; JSON has the same facts, every row.")
@click.option("--json-out", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the JSON report to this file (one run gives the comment and the data).")
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw forecast demand against base and head capacity to this SVG file.")
@click.option("--chart-workload", default="fleet", show_default=True, metavar="NAME",
              help="What the chart shows: 'fleet' (every inference service, in GPUs) or one workload.")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="The date each service's runway and order-by date count from (default: today, UTC).")
@click.option("--max-bytes", type=click.IntRange(min=1000), default=60_000, show_default=True,
              help="Size limit of the Markdown report (GitHub rejects comments over 65,536 characters); "
                   "longer reports collapse and then leave out rows, and say so.")
def diff(base_text: str, head_text: str, policy_config: Path | None, output_format: str,
         json_path: Path | None, chart_path: Path | None, chart_workload: str, as_of: datetime | None,
         max_bytes: int) -> None:
    """Compare two versions of a stack: GPUs, nodes, demand, headroom and (services) runway and
    order-by date per workload; power, cost and load per site; placement moves; and the policy
    verdicts of head, the new ones marked.

    Both sides are planned and previewed offline (the Pulumi program under mocks, then the policy
    pack): no cloud credentials are needed.

    Exit codes: 0 head passes, 2 bad input, 3 head is blocked (a mandatory policy violation, or no
    feasible placement).
    """
    from gpufleet.cli._output import print_json
    from gpufleet.diff import compare, render_markdown
    from gpufleet.diff.sources import load_side, resolve
    from gpufleet.outputs import check_outputs, write_atomic

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

"""``gpufleet preflight``: the plan against the providers' offerings, quotas and reservations."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gpufleet.catalog import CLOUDS
from gpufleet.cli._output import print_json
from gpufleet.cli._params import finite


@click.command()
@click.option("--stack", "stack_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Stack config file, e.g. stacks/Pulumi.dev.yaml (its plan is checked).")
@click.option("--cloud", "cloud", type=click.Choice(CLOUDS), default=None,
              help="Check only this cloud's pools (default: every cloud the plan uses).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Report format.")
@click.option("--aws-endpoint-url", "aws_endpoint_url", default=None, metavar="URL",
              help="Send every AWS call to this endpoint (an emulator such as moto).")
@click.option("--deadline-s", "deadline_s", type=finite(ge=1, le=86_400), default=300.0,
              show_default=True, help="Total time for the run; checks unfinished by then are 'not checked' (exit 4).")
def preflight(stack_file: Path, cloud: str | None, fmt: str, aws_endpoint_url: str | None, deadline_s: float) -> None:
    """Check the plan against what each provider offers this account.

    Per site and pool: the instance type is offered in each chosen zone, the provider's figures
    match the catalog, the account's quota covers the plan, and a named reservation exists and
    has room. Each shortfall comes with ranked alternatives. Credentials come from each SDK's
    usual chain; a cloud without credentials is reported as not checked.

    Exit codes: 0 all checked and fine, 2 bad input, 3 a shortfall, 4 some checks could not run
    (and nothing failed).
    """
    from gpufleet.plan import build_plan
    from gpufleet.preflight import PreflightOptions, run_preflight
    from gpufleet.stackfile import load_stack

    stack, spec = load_stack(stack_file)
    plan = build_plan(spec, stack)
    options = PreflightOptions(aws_endpoint_url=aws_endpoint_url, deadline_s=deadline_s)
    report = run_preflight(plan, spec, stack=stack, clouds=[cloud] if cloud else None, options=options)
    if fmt == "json":
        print_json(report.to_json())
    else:
        sys.stdout.write(report.render_text())
    sys.exit(report.exit_code)

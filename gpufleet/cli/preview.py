"""``gpufleet preview``: the stack's program under Pulumi's mocks, then the policy pack, no credentials.

Exit codes: 0 pass (advisory findings allowed), 3 blocked by a mandatory violation (or no placement),
2 bad input (stack file, policy config), 1 internal fault (the pack did not start, a bug).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

FORMATS = ("text", "json", "markdown", "sarif")


@click.command()
@click.option("--stack", "stack_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Stack config file, e.g. stacks/Pulumi.dev.yaml.")
@click.option("--policy-config", "policy_config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Policy pack config (Pulumi's --policy-pack-config format): demand floors, enforcement levels.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text: a summary table; json: the full report; markdown: a PR comment; sarif: code scanning.")
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report to this file instead of stdout.")
def preview(stack_file: Path, policy_config: Path | None, fmt: str, output: Path | None) -> None:
    """Run the stack's Pulumi program offline and the gpufleet policy pack over every resource.

    The program runs under Pulumi's mocks (no cloud, no credentials); the pack in policies/ runs
    as `pulumi preview --policy-pack policies` runs it, over the engine's gRPC protocol. The report
    shows capacity against demand per workload, power per site, and every violation.
    """
    from gpufleet.outputs import check_outputs, write_atomic
    from gpufleet.preview import render, render_text, run_preview

    # Before any work: never over an input (the stack, the policy config), an existing directory.
    check_outputs({"--output": output}, [stack_file, policy_config])
    with _Progress() as progress:
        result = run_preview(stack_file, policy_config, progress=progress)
    text = _render_text(result, output, render_text) if fmt == "text" else render(result, fmt)
    if output is not None:
        write_atomic(output, text)
    elif text:
        sys.stdout.write(text)
    if result.exit_code:
        # SystemExit rather than ctx.exit: with standalone_mode=False click would return the code.
        raise SystemExit(result.exit_code)


def _render_text(result: Any, output: Path | None, render_text: Any) -> str:
    """The text report: drawn on the terminal (returns ""), or rendered plain for a file."""
    import io

    from rich.console import Console

    from gpufleet.cli._output import console

    if output is None:
        render_text(result, console())
        return ""
    buffer = io.StringIO()
    render_text(result, Console(file=buffer, width=160, no_color=True, soft_wrap=False))
    return buffer.getvalue()


class _Progress:
    """A spinner on stderr while the program and the pack run (plain lines when not a terminal)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.status: Any = None

    def __enter__(self) -> _Progress:
        if self.console.is_terminal:
            self.status = self.console.status("gpufleet preview")
            self.status.start()
        return self

    def __call__(self, message: str) -> None:
        if self.status is not None:
            self.status.update(f"gpufleet preview: {message}")
        else:
            self.console.print(f"gpufleet preview: {message}", highlight=False, soft_wrap=True)

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()

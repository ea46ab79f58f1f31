"""``gpufleet preview``: the stack's program under Pulumi's mocks, then the policy pack, no credentials.

Exit codes: 0 pass (advisory findings allowed), 3 blocked by a mandatory violation (or no placement),
2 bad input (stack file, policy config), 1 internal fault (the pack did not start, a bug).

Several stacks (``--stack`` more than once, or a directory) run in parallel, one process each
(:mod:`gpufleet.cli._multistack`); the exit code is then the worst stack's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

FORMATS = ("text", "json", "markdown", "sarif")


@click.command()
@click.option("--stack", "stack_args", type=click.Path(path_type=Path), required=True, multiple=True,
              help="Stack config file, e.g. stacks/Pulumi.dev.yaml. Repeat it, or give a directory "
                   "(every Pulumi.*.yaml in it), to preview several stacks in parallel.")
@click.option("--policy-config", "policy_config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Policy pack config (Pulumi's --policy-pack-config format): demand floors, enforcement levels.")
@click.option("--policy-config-dir", "policy_config_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="A directory of per-stack policy configs: each stack uses <dir>/<stack>.json "
                                 "when it exists (e.g. policies/config).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text: a summary table; json: the full report; markdown: a PR comment; sarif: code scanning.")
@click.option("--output", "output", type=click.Path(path_type=Path), default=None,
              help="Write the report to this file instead of stdout. With several stacks: a directory, "
                   "one <stack>.<txt|json|md|sarif> per stack.")
@click.option("--jobs", "jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="With several stacks: how many previews run at once (default: the CPUs gpufleet may use).")
def preview(stack_args: tuple[Path, ...], policy_config: Path | None, policy_config_dir: Path | None, fmt: str,
            output: Path | None, jobs: int | None) -> None:
    """Run the stack's Pulumi program offline and the gpufleet policy pack over every resource.

    The program runs under Pulumi's mocks (no cloud, no credentials); the pack in policies/ runs
    as `pulumi preview --policy-pack policies` runs it, over the engine's gRPC protocol. The report
    shows capacity against demand per workload, power per site, and every violation.

    Several stacks run in parallel, one process each; each stack's report goes to
    --output DIR/<stack>.<ext> (or stdout, one after another), a summary table follows, and the
    exit code is the worst stack's: 2 bad input, then 1 internal fault, then 3 blocked, then 0.
    """
    from gpufleet.outputs import check_outputs, write_atomic
    from gpufleet.preview import render, render_text, run_preview
    from gpufleet.stackfile import stack_name
    from gpufleet.stackset import StackRef, check_policy_config_flags, is_many, policy_config_for

    check_policy_config_flags(policy_config, policy_config_dir)
    if is_many(stack_args):
        raise SystemExit(_preview_many(stack_args, policy_config, policy_config_dir, fmt, output, jobs))
    stack_file = stack_args[0]
    policy_config = policy_config_for(StackRef(stack_name(stack_file), stack_file), every=policy_config,
                                      per_stack_dir=policy_config_dir)
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


def _preview_many(stack_args: tuple[Path, ...], policy_config: Path | None, policy_config_dir: Path | None,
                  fmt: str, output: Path | None, jobs: int | None) -> int:
    """Preview several stacks in parallel (see :mod:`gpufleet.cli._multistack`); the combined exit code."""
    from gpufleet.cli._multistack import EXTENSIONS, StackTask, check_stack_outputs, gpufleet_argv, output_dir, \
        run_stacks, temp_workdir
    from gpufleet.parallel import default_jobs
    from gpufleet.stackset import expand_stacks, policy_config_for

    stacks = expand_stacks(stack_args)
    out_dir = output_dir("--output", output)
    ext = EXTENSIONS[fmt]
    configs = {s.name: policy_config_for(s, every=policy_config, per_stack_dir=policy_config_dir) for s in stacks}
    if out_dir is not None:
        check_stack_outputs({f"--output ({s.name})": out_dir / f"{s.name}.{ext}" for s in stacks},
                            [*(s.path for s in stacks), *configs.values()])
    with temp_workdir("preview") as tmp:
        tasks = []
        for s in stacks:
            report = Path(tmp) / f"{s.name}.{ext}"
            config = configs[s.name]
            argv = gpufleet_argv("preview", "--stack", str(s.path), "--format", fmt, "--output", str(report),
                                 *(["--policy-config", str(config)] if config else []))
            tasks.append(StackTask(s, argv, report, out_dir / f"{s.name}.{ext}" if out_dir else None))
        return run_stacks("preview", tasks, jobs=jobs or default_jobs(), fmt=fmt, workdir=Path(tmp))


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

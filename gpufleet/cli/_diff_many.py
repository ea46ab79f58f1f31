"""``gpufleet diff --stack ... --base-ref REF``: each stack file against the same path at a git ref.

One ``gpufleet diff --base REF:PATH --head PATH`` process per stack, in parallel
(:mod:`gpufleet.cli._multistack`). PATH is the stack file's path inside the git repository; a
stack file missing from the working tree is compared with ``HEAD:PATH`` (a stack the change deletes),
one missing at REF is a new stack. ``--output DIR`` gets ``<stack>.md`` (or ``.json``),
``--json-out DIR`` ``<stack>.json``, ``--chart DIR`` ``<stack>.svg``.
"""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

from gpufleet.errors import Issue, SpecError


def base_and_head(stack_file: Path, base_ref: str) -> tuple[str, str]:
    """The ``--base`` and ``--head`` of one stack file compared with ``base_ref``."""
    rel = repo_path(stack_file)
    return f"{base_ref}:{rel}", (str(stack_file) if stack_file.is_file() else f"HEAD:{rel}")


def repo_path(path: Path) -> str:
    """``path`` relative to the root of the git repository it is in (as ``git show REF:PATH`` wants).

    Raises:
        SpecError: git is missing, or the path is outside the repository (exit 2).
    """
    where = path.parent if path.parent.is_dir() else Path(".")
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=where, capture_output=True, text=True,
                              check=False)
    except OSError as exc:
        raise SpecError(Issue("--base-ref", f"git is not available: {exc}", "git on the PATH")) from None
    if done.returncode != 0:
        raise SpecError(Issue("--stack", f"{str(path)!r} is not inside a git repository",
                              "a stack file in the repository whose history --base-ref names"))
    top = Path(done.stdout.strip()).resolve()
    try:
        return path.resolve().relative_to(top).as_posix()
    except ValueError:
        raise SpecError(Issue("--stack", f"{str(path)!r} is outside the repository {str(top)!r}",
                              "a stack file inside the repository")) from None


def diff_many(stack_args: tuple[Path, ...], base_ref: str, policy_config: Path | None,
              policy_config_dir: Path | None, output_format: str, output: Path | None, json_dir: Path | None,
              chart_dir: Path | None, chart_workload: str, as_of: date, max_bytes: int, jobs: int | None) -> int:
    """Diff several stacks against ``base_ref`` in parallel; the combined exit code."""
    from gpufleet.cli._multistack import StackTask, check_stack_outputs, gpufleet_argv, output_dir, run_stacks, \
        temp_workdir
    from gpufleet.parallel import default_jobs
    from gpufleet.stackset import expand_stacks, policy_config_for

    if chart_workload != "fleet":
        raise SpecError(Issue("--chart-workload", f"{chart_workload!r} is one stack's workload",
                              "fleet (the only chart drawn for several stacks)"))
    stacks = expand_stacks(stack_args, missing_ok=True)
    dirs = {flag: output_dir(flag, value) for flag, value in
            (("--output", output), ("--json-out", json_dir), ("--chart", chart_dir))}
    ext = "md" if output_format == "markdown" else "json"
    files = {flag: (folder, suffix) for flag, folder, suffix in
             (("--output", dirs["--output"], ext), ("--json-out", dirs["--json-out"], "json"),
              ("--chart", dirs["--chart"], "svg")) if folder is not None}
    configs = {s.name: policy_config_for(s, every=policy_config, per_stack_dir=policy_config_dir) for s in stacks}
    check_stack_outputs({f"{flag} ({s.name})": folder / f"{s.name}.{suffix}"
                         for flag, (folder, suffix) in files.items() for s in stacks},
                        [*(s.path for s in stacks), *configs.values()])
    sides = {s.name: base_and_head(s.path, base_ref) for s in stacks}
    with temp_workdir("diff") as tmp:
        tasks = []
        for s in stacks:
            base, head = sides[s.name]
            extra = [arg for flag, (folder, suffix) in files.items() if flag != "--output"
                     for arg in (flag, str(folder / f"{s.name}.{suffix}"))]
            config = configs[s.name]
            argv = gpufleet_argv("diff", "--base", base, "--head", head, "--format", output_format,
                                 "--as-of", as_of.isoformat(), "--max-bytes", str(max_bytes), *extra,
                                 *(["--policy-config", str(config)] if config else []))
            out = dirs["--output"]
            tasks.append(StackTask(s, argv, Path(tmp) / f"{s.name}.{ext}",
                                   out / f"{s.name}.{ext}" if out else None, stdout_is_report=True))
        return run_stacks("diff", tasks, jobs=jobs or default_jobs(), fmt=output_format, workdir=Path(tmp))

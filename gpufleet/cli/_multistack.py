"""``gpufleet preview`` and ``gpufleet diff`` over several stacks: one child process per stack.

Each stack runs as its own ``gpufleet preview`` / ``gpufleet diff`` process (the single-stack
command, unchanged), at most ``--jobs`` at a time (:func:`gpufleet.parallel.run_jobs`), so each
stack's report, errors and exit code are exactly those of a single-stack run. Its report is written
to a temporary file and, once the stack has finished with a report (exit 0 or 3), published:

* ``--output DIR``: to ``DIR/<stack>.<ext>`` (``txt``, ``json``, ``md``, ``sarif``), atomically;
  the summary table is printed on stdout;
* no ``--output``: on stdout, after every stack has finished, in the order given: ``text``, each
  stack's report then the summary table; ``json``, one document (``schema_version``, ``command``,
  ``exit_code``, ``stacks[]`` with each stack's ``report``); ``markdown``, the summary table then each
  stack's report; ``sarif``, one SARIF log with one run per stack (the summary goes to stderr).

A stack that fails (bad input, internal fault) has no report; its error is printed on stderr as it
ends, and its first line is in the summary. The combined exit code is the worst stack's
(:func:`gpufleet.stackset.worst_exit`). Progress goes to stderr: a live table on a terminal, one
plain line per start and end otherwise (CI logs).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpufleet.outputs import check_outputs, write_atomic
from gpufleet.parallel import Handle, Job, Outcome, ProcessHandle, run_jobs
from gpufleet.stackset import EXIT_SEVERITY, StackRef, result_word, worst_exit

SUMMARY_SCHEMA_VERSION = 1
EXTENSIONS = {"text": "txt", "json": "json", "markdown": "md", "sarif": "sarif"}
"""Report file suffix per ``--format``, for ``--output DIR/<stack>.<ext>``."""
_REPORTED = (0, 3)
"""Exit codes with which a stack has a report (pass, blocked)."""


@dataclass
class StackTask:
    """One stack's child command and where its report goes.

    Attributes:
        ref: the stack.
        argv: the child's command line (the report goes to ``report_tmp``).
        report_tmp: the file the child writes its report to (or its stdout, ``stdout_is_report``).
        report_out: where the report is published (None: stdout, at the end).
        stdout_is_report: the child prints its report on stdout (``gpufleet diff``).
    """

    ref: StackRef
    argv: list[str]
    report_tmp: Path
    report_out: Path | None
    stdout_is_report: bool = False


@dataclass(frozen=True)
class SummaryRow:
    """One line of the summary table: a stack, how it ended, its report file, a detail."""

    name: str
    outcome: Outcome
    report: Path | None = None
    detail: str = ""


@dataclass
class StackRun:
    """How one stack ended, for the summary."""

    task: StackTask
    outcome: Outcome
    error: str = ""
    report: str | None = None
    published: Path | None = None

    @property
    def exit_code(self) -> int | None:
        return self.outcome.exit_code

    def row(self) -> SummaryRow:
        return SummaryRow(self.task.ref.name, self.outcome, self.published, self.error or self.outcome.reason)

    def to_json(self, fmt: str) -> dict[str, Any]:
        report: Any = self.report
        if report is not None and fmt in ("json", "sarif"):
            report = json.loads(report)
        return {"stack": self.task.ref.name, "stack_file": str(self.task.ref.path), "state": self.outcome.state,
                "exit_code": self.exit_code, "result": result_word(self.exit_code),
                "seconds": round(self.outcome.seconds, 2), "error": self.error or self.outcome.reason or None,
                "report_file": str(self.published) if self.published else None, "report": report}


def gpufleet_argv(*args: str) -> list[str]:
    """The command line of a child ``gpufleet`` process (this interpreter, this gpufleet)."""
    return [sys.executable, "-m", "gpufleet", *args]


def output_dir(flag: str, value: Path | None) -> Path | None:
    """Check a directory-valued output flag of a multi-stack run (it may not exist yet).

    Raises:
        SpecError: the path exists and is not a directory (exit 2).
    """
    from gpufleet.errors import Issue, SpecError

    if value is not None and value.exists() and not value.is_dir():
        raise SpecError(Issue(flag, f"{str(value)!r} is a file; with several stacks {flag} is a directory "
                                    "(one file per stack, named after it)", "a directory path"))
    return value


def check_stack_outputs(outputs: Mapping[str, Path], inputs: Sequence[Path | None]) -> None:
    """:func:`gpufleet.outputs.check_outputs` for per-stack files, and no two flags on one file."""
    from gpufleet.errors import Issue, SpecError

    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        other = seen.setdefault(path.resolve(), flag)
        if other != flag:
            raise SpecError(Issue(flag, f"{str(path)!r} is also {other}'s file", "different directories for the two"))
    check_outputs(dict(outputs), inputs, create_parents=True)


def run_stacks(command: str, tasks: Sequence[StackTask], *, jobs: int, fmt: str, workdir: Path) -> int:
    """Run every task, publish the reports, print the combined output; return the combined exit code."""
    by_name = {t.ref.name: t for t in tasks}
    progress = Progress(command, [t.ref.name for t in tasks])
    runs: dict[str, StackRun] = {}

    def start(job: Job) -> Handle:
        task = by_name[job.name]
        return ProcessHandle(task.argv, stdout=task.report_tmp if task.stdout_is_report else None,
                             stderr=workdir / f"{job.name}.stderr")

    with progress:
        outcomes = run_jobs([Job(t.ref.name) for t in tasks], start, max_parallel=jobs,
                            on_event=progress.event, on_tick=progress.tick)
    for task, outcome in zip(tasks, outcomes, strict=True):
        runs[task.ref.name] = _finish(command, task, outcome, workdir)
    ordered = [runs[t.ref.name] for t in tasks]
    code = worst_exit(r.exit_code if r.exit_code is not None else 4 for r in ordered)
    _print_combined(command, ordered, fmt, code, to_files=any(t.report_out is not None for t in tasks))
    return code


def _finish(command: str, task: StackTask, outcome: Outcome, workdir: Path) -> StackRun:
    run = StackRun(task, outcome)
    if outcome.exit_code in _REPORTED and task.report_tmp.is_file():
        run.report = task.report_tmp.read_text(encoding="utf-8")
        if task.report_out is not None:
            write_atomic(task.report_out, run.report)
            run.published = task.report_out
    if outcome.state == "done" and outcome.exit_code not in _REPORTED:
        lines = _error_lines(command, workdir / f"{task.ref.name}.stderr")
        run.error = " ".join(line.strip() for line in lines)[:300] or f"{command} exited {outcome.exit_code}"
        sys.stderr.write("".join(f"[{task.ref.name}] {line}\n" for line in lines or [run.error]))
    return run


def _error_lines(command: str, path: Path) -> list[str]:
    """The child's stderr without its progress lines (``gpufleet <command>: ...``)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip() and not line.startswith(f"gpufleet {command}: ")]


def _print_combined(command: str, runs: list[StackRun], fmt: str, code: int, *, to_files: bool) -> None:
    from gpufleet.cli._output import console

    out = sys.stdout
    if to_files or fmt == "text":
        if not to_files:
            for run in runs:
                if run.report is not None:
                    out.write(run.report)
                    out.write("\n")
        out.flush()
        render_summary(command, [r.row() for r in runs], code, console())
    elif fmt == "json":
        doc = {"schema_version": SUMMARY_SCHEMA_VERSION, "command": command, "exit_code": code,
               "stacks": [r.to_json(fmt) for r in runs]}
        out.write(json.dumps(doc, indent=2) + "\n")
    elif fmt == "markdown":
        out.write(summary_markdown(command, [r.row() for r in runs], code))
        for run in runs:
            if run.report is not None:
                out.write("\n---\n\n" + run.report)
    else:  # sarif: one log, one run per stack
        logs = [json.loads(r.report) for r in runs if r.report is not None]
        merged: dict[str, Any] = dict(logs[0]) if logs else {"version": "2.1.0", "runs": []}
        merged["runs"] = [sarif_run for log in logs for sarif_run in log.get("runs", [])]
        out.write(json.dumps(merged, indent=2) + "\n")
        render_summary(command, [r.row() for r in runs], code, console(stderr=True))


def _stacks(n: int) -> str:
    return f"{n} stack{'' if n == 1 else 's'}"


def render_summary(command: str, rows: list[SummaryRow], code: int, target: Any) -> None:
    """The summary table (stack, result, exit, seconds, report, detail) and the combined exit code."""
    from rich.table import Table

    table = Table(title=f"gpufleet {command}: {_stacks(len(rows))}", title_justify="left")
    for name in ("stack", "result", "exit", "seconds", "report", "detail"):
        table.add_column(name, justify="right" if name in ("exit", "seconds") else "left", overflow="fold")
    for row in rows:
        code_of = row.outcome.exit_code
        table.add_row(row.name, result_word(code_of), "—" if code_of is None else str(code_of),
                      f"{row.outcome.seconds:.1f}" if row.outcome.state == "done" else "—",
                      row.report.name if row.report else "—", row.detail)
    target.print(table, highlight=False)
    folders = sorted({str(r.report.parent) for r in rows if r.report is not None})
    if folders:
        target.print(f"reports in {', '.join(folders)}", highlight=False, soft_wrap=True)
    order = " > ".join(f"{c} {result_word(c)}" for c in EXIT_SEVERITY)
    target.print(f"exit {code} ({result_word(code)}): the worst stack's, by {order}", highlight=False,
                 soft_wrap=True)


def summary_markdown(command: str, rows: list[SummaryRow], code: int) -> str:
    """The summary as a Markdown table (the top of a multi-stack Markdown report)."""
    icons = {0: "✅", 3: "🚫"}
    lines = [f"### gpufleet {command}: {_stacks(len(rows))}, exit {code} ({result_word(code)})", "",
             "| stack | result | detail |", "| --- | --- | --- |"]
    for row in rows:
        code_of = row.outcome.exit_code
        icon = icons.get(code_of, "⚠️") if code_of is not None else "⏭️"
        detail = row.detail.replace("|", "\\|")
        lines.append(f"| `{row.name}` | {icon} {result_word(code_of)} | {detail} |")
    return "\n".join(lines) + "\n"


class Progress:
    """Progress on stderr: a live table on a terminal, one line per start and end otherwise."""

    def __init__(self, command: str, names: list[str]) -> None:
        from rich.console import Console

        self.command = command
        self.console = Console(stderr=True)
        self.names = names
        self.state: dict[str, str] = dict.fromkeys(names, "waiting")
        self.began: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.live: Any = None
        self.handles: Mapping[str, Handle] = {}

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, transient=True, refresh_per_second=4)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def event(self, outcome: Outcome) -> None:
        name, now = outcome.name, time.monotonic()
        if outcome.state == "running":
            self.began[name] = now
            self.state[name] = "running"
            line = "started"
        elif outcome.state == "done":
            self.ended[name] = now
            self.state[name] = result_word(outcome.exit_code)
            line = f"{self.state[name]} (exit {outcome.exit_code}, {outcome.seconds:.1f} s)"
        else:
            self.state[name] = outcome.state
            line = f"{outcome.state}: {outcome.reason}"
        if self.live is None:
            self.console.print(f"gpufleet {self.command}: {name} {line}", highlight=False, soft_wrap=True)

    def tick(self, handles: Mapping[str, Handle]) -> None:
        self.handles = handles
        if self.live is not None:
            self.live.update(self._table())

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("stack", no_wrap=True, min_width=max(map(len, self.names), default=1))
        table.add_column("state", no_wrap=True, min_width=len("internal fault"))
        table.add_column("time", justify="right", no_wrap=True, min_width=7)
        table.add_column("step", no_wrap=True, overflow="ellipsis", ratio=1)
        now, prefix = time.monotonic(), f"gpufleet {self.command}: "
        for name in self.names:
            state = self.state[name]
            handle = self.handles.get(name)
            step = handle.status().removeprefix(prefix) if handle is not None and state == "running" else ""
            since = self.began.get(name)
            took = f"{self.ended.get(name, now) - since:.1f} s" if since is not None else ""
            table.add_row(name, state, took, step)
        return table


def temp_workdir(command: str) -> tempfile.TemporaryDirectory[str]:
    """The temporary directory a multi-stack run keeps children's reports and stderr in."""
    return tempfile.TemporaryDirectory(prefix=f"gpufleet-{command}-stacks-")

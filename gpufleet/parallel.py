"""Run one job per stack, at most N at a time, in order, and stop them all on an interrupt.

:func:`run_jobs` is the scheduler behind every multi-stack command. It starts jobs in the order
given, never more than ``max_parallel`` at once; a job with ``after`` waits until those jobs have
finished, and is skipped (never started) when one of them did not end with exit 0. With
``fail_fast``, the first failure starts nothing more: the jobs still running finish, the rest are
reported as not started.

A job runs behind one small interface, :class:`Handle` (``poll``, ``stop``, ``kill``, ``status``):
:class:`ProcessHandle` runs a command in its own process group (``gpufleet preview`` / ``diff`` per
stack), :class:`ThreadHandle` runs a function (a deployment through Pulumi's Automation API, which
starts its own processes). Tests give the scheduler fakes.

Interrupts: when the waiting loop is interrupted (SIGINT's ``KeyboardInterrupt``, or the
``SystemExit`` gpufleet's SIGTERM handler raises), every running job is asked to stop (SIGTERM to its
process group), given ``grace_s`` to clean up, then killed, and the interrupt goes on. Children run
in their own session, so a Ctrl-C in a terminal reaches them once, from here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from gpufleet.errors import EXIT_INTERNAL

STOP_GRACE_S = 30.0
"""How long a stopped job has to clean up (a policy pack to stop, temporary files) before it is killed."""


def default_jobs() -> int:
    """How many jobs run at once by default: the CPUs this process may use (its affinity, which a
    container or ``taskset`` narrows), else the CPU count."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


class Handle(Protocol):
    """A started job."""

    def poll(self) -> int | None:
        """The job's exit code once it has finished, else None."""

    def stop(self) -> None:
        """Ask the job to stop and clean up (SIGTERM)."""

    def kill(self) -> None:
        """Stop the job now, with whatever it started."""

    def status(self) -> str:
        """What the job is doing now, in a few words (may be empty)."""


@dataclass(frozen=True)
class Job:
    """One unit of work: a stack. ``after`` names the jobs that must pass before it starts."""

    name: str
    after: tuple[str, ...] = ()


@dataclass
class Outcome:
    """How one job ended.

    Attributes:
        name: the job's name.
        state: ``done`` (it ran; see ``exit_code``), ``running`` (only in events), ``skipped`` (a job it
            waits for failed) or ``not started`` (``fail_fast`` after another job failed).
        exit_code: the job's exit code when it ran, else None.
        seconds: wall-clock time from its start to its end.
        reason: why it was skipped or not started.
    """

    name: str
    state: str
    exit_code: int | None = None
    seconds: float = 0.0
    reason: str = ""


Event = Callable[[Outcome], None]
"""Called when a job starts (state ``running``), ends (``done``), is ``skipped`` or is ``not started``."""


@dataclass
class _Running:
    job: Job
    handle: Handle
    began: float = field(default_factory=time.monotonic)


def run_jobs(jobs: Sequence[Job], start: Callable[[Job], Handle], *, max_parallel: int, fail_fast: bool = False,
             on_event: Event | None = None, on_tick: Callable[[Mapping[str, Handle]], None] | None = None,
             poll_s: float = 0.05, grace_s: float = STOP_GRACE_S) -> list[Outcome]:
    """Run ``jobs`` with at most ``max_parallel`` at a time; return one :class:`Outcome` per job, in
    the order of ``jobs``.

    Args:
        jobs: the jobs, in the order they should start; ``after`` must name earlier jobs.
        start: starts one job and returns its handle.
        max_parallel: how many jobs may run at once (>= 1).
        fail_fast: after a job fails, start no other.
        on_event: told when a job starts, ends, is skipped or is not started.
        on_tick: called with the running handles on every poll (a progress display).
        poll_s: how often running jobs are polled.
        grace_s: how long stopped jobs get before they are killed, on an interrupt.

    Raises:
        ValueError: ``max_parallel`` < 1, or a job waits for a job that is not before it.
        BaseException: an interrupt, after every running job has been stopped.
    """
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1")
    order = {job.name: i for i, job in enumerate(jobs)}
    for job in jobs:
        for dep in job.after:
            if order.get(dep, len(jobs)) >= order[job.name]:
                raise ValueError(f"job {job.name!r} waits for {dep!r}, which is not an earlier job")
    say = on_event or (lambda _outcome: None)
    outcomes: dict[str, Outcome] = {}
    pending = list(jobs)
    running: dict[str, _Running] = {}
    failed = False
    try:
        while pending or running:
            for name, run in list(running.items()):
                code = run.handle.poll()
                if code is not None:
                    del running[name]
                    outcomes[name] = Outcome(name, "done", code, time.monotonic() - run.began)
                    failed = failed or code != 0
                    say(outcomes[name])
            for job in list(pending):
                if failed and fail_fast:
                    pending.remove(job)
                    outcomes[job.name] = Outcome(job.name, "not started", reason="another stack failed (--fail-fast)")
                    say(outcomes[job.name])
                    continue
                blocker = next((d for d in job.after if d in outcomes and outcomes[d].exit_code != 0), None)
                if blocker is not None:
                    pending.remove(job)
                    outcomes[job.name] = Outcome(job.name, "skipped", reason=_reason(blocker, outcomes[blocker]))
                    say(outcomes[job.name])
                    continue
                if len(running) >= max_parallel or any(d not in outcomes for d in job.after):
                    continue
                pending.remove(job)
                running[job.name] = _Running(job, start(job))
                say(Outcome(job.name, "running"))
            if on_tick is not None:
                on_tick({name: run.handle for name, run in running.items()})
            if running:
                time.sleep(poll_s)
    except BaseException:
        _stop_all([run.handle for run in running.values()], grace_s)
        raise
    return [outcomes[job.name] for job in jobs]


def _reason(blocker: str, outcome: Outcome) -> str:
    if outcome.exit_code is None:
        return f"{blocker} was {outcome.state}"
    return f"{blocker} failed (exit {outcome.exit_code})"


def _stop_all(handles: list[Handle], grace_s: float) -> None:
    """SIGTERM every job, wait up to ``grace_s`` for all of them, then kill what is left."""
    for handle in handles:
        handle.stop()
    deadline = time.monotonic() + grace_s
    left = list(handles)
    while left and time.monotonic() < deadline:
        left = [h for h in left if h.poll() is None]
        if left:
            time.sleep(0.05)
    for handle in left:
        handle.kill()


class ProcessHandle:
    """A command run in its own session (process group), its stderr kept in a file.

    ``status`` is the last line the command wrote to stderr (gpufleet's progress lines).
    """

    def __init__(self, argv: Sequence[str], *, stdout: Path | None, stderr: Path,
                 cwd: str | Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.stderr_path = stderr
        out: IO[bytes] | int = open(stdout, "wb") if stdout is not None else subprocess.DEVNULL  # noqa: SIM115
        err = open(stderr, "wb")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                            cwd=cwd, env=dict(env) if env is not None else None,
                                            start_new_session=True)
        finally:
            err.close()
            if not isinstance(out, int):
                out.close()
        self.code: int | None = None

    def poll(self) -> int | None:
        if self.code is None:
            code = self.process.poll()
            if code is not None:
                # Killed by a signal (negative code): gpufleet itself did not end it normally.
                self.code = code if code >= 0 else EXIT_INTERNAL
        return self.code

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def status(self) -> str:
        return last_line(self.stderr_path)


class ThreadHandle:
    """A function run in a thread; its return value is the exit code (an exception: 1).

    Threads cannot be stopped from outside: ``stop`` calls the ``on_stop`` given (e.g. to cancel
    the work the function started), ``kill`` does nothing more.
    """

    def __init__(self, fn: Callable[[Callable[[str], None]], int], *, name: str,
                 on_stop: Callable[[], None] | None = None) -> None:
        self._code: int | None = None
        self._status = ""
        self._on_stop = on_stop
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name=f"gpufleet-{name}", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[Callable[[str], None]], int]) -> None:
        try:
            self._code = fn(self._set_status)
        except BaseException as exc:  # a job's crash is its outcome, not the scheduler's
            self.error = exc
            self._code = EXIT_INTERNAL

    def _set_status(self, text: str) -> None:
        self._status = text

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else (self._code if self._code is not None else EXIT_INTERNAL)

    def stop(self) -> None:
        if self._on_stop is not None and self._thread.is_alive():
            self._on_stop()

    def kill(self) -> None:
        return None

    def status(self) -> str:
        return self._status


def last_line(path: Path, *, tail_bytes: int = 4096) -> str:
    """The last non-empty line of a (growing) text file, or "" (read from its end only)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - tail_bytes))
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in data.splitlines() if line.strip()]
    return lines[-1] if lines else ""

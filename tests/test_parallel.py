"""The multi-stack scheduler: how many run at once, in what order, what a failure stops, and an
interrupt stopping every running job. Jobs are fakes driven by the test (no timing assertions)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from gpufleet.parallel import Job, Outcome, ProcessHandle, default_jobs, last_line, run_jobs


class FakeHandle:
    """A job that ends after a given number of polls with a given exit code."""

    def __init__(self, world: FakeWorld, name: str) -> None:
        self.world, self.name = world, name
        self.polls_left = world.polls.get(name, 1)
        self.stopped = False

    def poll(self) -> int | None:
        if self.stopped:
            return 143
        if self.polls_left > 0:
            self.polls_left -= 1
            return None
        return self.world.codes.get(self.name, 0)

    def stop(self) -> None:
        self.stopped = True
        self.world.stopped.append(self.name)

    def kill(self) -> None:  # pragma: no cover - stop() always works here
        raise AssertionError("not needed")

    def status(self) -> str:
        return ""


class FakeWorld:
    def __init__(self, codes: dict[str, int] | None = None, polls: dict[str, int] | None = None) -> None:
        self.codes = codes or {}
        self.polls = polls or {}
        self.started: list[str] = []
        self.running: set[str] = set()
        self.most_at_once = 0
        self.stopped: list[str] = []
        self.handles: dict[str, FakeHandle] = {}

    def start(self, job: Job) -> FakeHandle:
        self.started.append(job.name)
        self.handles[job.name] = FakeHandle(self, job.name)
        return self.handles[job.name]

    def tick(self, running: object) -> None:
        self.most_at_once = max(self.most_at_once, len(running))  # type: ignore[arg-type]


def run(world: FakeWorld, jobs: list[Job], **kwargs: object) -> list[Outcome]:
    return run_jobs(jobs, world.start, on_tick=world.tick, poll_s=0, **kwargs)  # type: ignore[arg-type]


def test_never_more_than_max_parallel_and_in_the_order_given() -> None:
    world = FakeWorld(polls={"a": 3, "b": 1, "c": 1, "d": 1, "e": 2})
    outcomes = run(world, [Job(n) for n in "abcde"], max_parallel=2)
    assert world.started == list("abcde")
    assert world.most_at_once == 2
    assert [(o.name, o.state, o.exit_code) for o in outcomes] == [(n, "done", 0) for n in "abcde"]


def test_one_at_a_time_runs_them_one_after_another() -> None:
    world = FakeWorld(polls=dict.fromkeys("abc", 2))
    run(world, [Job(n) for n in "abc"], max_parallel=1)
    assert world.most_at_once == 1


def test_a_failure_skips_only_its_dependants() -> None:
    world = FakeWorld(codes={"a": 3})
    jobs = [Job("a"), Job("b"), Job("c", after=("a",)), Job("d", after=("c",)), Job("e", after=("b",))]
    outcomes = {o.name: o for o in run(world, jobs, max_parallel=4)}
    assert world.started == ["a", "b", "e"]
    assert (outcomes["c"].state, outcomes["c"].reason) == ("skipped", "a failed (exit 3)")
    assert (outcomes["d"].state, outcomes["d"].reason) == ("skipped", "c was skipped")
    assert outcomes["e"].exit_code == 0 and outcomes["a"].exit_code == 3


def test_a_dependant_waits_for_what_it_is_after() -> None:
    world = FakeWorld(polls={"a": 5})
    run(world, [Job("a"), Job("b", after=("a",)), Job("c")], max_parallel=3)
    assert world.started == ["a", "c", "b"]


def test_fail_fast_starts_nothing_more_after_a_failure() -> None:
    world = FakeWorld(codes={"a": 2}, polls={"a": 0, "b": 4})
    outcomes = {o.name: o for o in run(world, [Job(n) for n in "abcd"], max_parallel=2, fail_fast=True)}
    assert world.started == ["a", "b"]
    assert outcomes["b"].exit_code == 0  # already running: it finishes
    assert [outcomes[n].state for n in "cd"] == ["not started", "not started"]


def test_without_fail_fast_a_failure_stops_nothing() -> None:
    world = FakeWorld(codes={"a": 2})
    run(world, [Job(n) for n in "abc"], max_parallel=1)
    assert world.started == list("abc")


def test_an_interrupt_stops_every_running_job_and_goes_on() -> None:
    world = FakeWorld(polls=dict.fromkeys("abc", 10**9))
    calls = 0

    def tick(running: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_jobs([Job(n) for n in "abc"], world.start, max_parallel=2, on_tick=tick, poll_s=0)
    assert sorted(world.stopped) == ["a", "b"]  # c never started


def test_bad_arguments_are_refused() -> None:
    world = FakeWorld()
    with pytest.raises(ValueError, match="at least 1"):
        run(world, [Job("a")], max_parallel=0)
    with pytest.raises(ValueError, match="not an earlier job"):
        run(world, [Job("a", after=("b",)), Job("b")], max_parallel=1)


def test_a_process_job_reports_its_exit_code_and_its_last_stderr_line(tmp_path: Path) -> None:
    script = "import sys; print('one', file=sys.stderr); print('two', file=sys.stderr); print('out'); sys.exit(3)"
    handle = ProcessHandle([sys.executable, "-c", script], stdout=tmp_path / "out", stderr=tmp_path / "err")
    [outcome] = run_jobs([Job("x")], lambda _job: handle, max_parallel=1, poll_s=0.01)
    assert outcome.exit_code == 3
    assert handle.status() == "two" and (tmp_path / "out").read_text() == "out\n"


def test_stopping_a_process_job_stops_its_whole_process_group(tmp_path: Path) -> None:
    # The job starts a grandchild (as gpufleet preview starts the policy pack) and writes its pid.
    pid_file = tmp_path / "pid"
    script = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
              f" open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(600)")
    handle = ProcessHandle([sys.executable, "-c", script], stdout=None, stderr=tmp_path / "err")
    while not pid_file.exists() or not pid_file.read_text():
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    handle.stop()  # SIGTERM to the group; neither process handles it, so both end
    while handle.poll() is None:
        time.sleep(0.05)
    assert handle.poll() == 1  # killed by a signal: not a normal end
    for _ in range(100):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:  # pragma: no cover
        os.kill(grandchild, signal.SIGKILL)
        pytest.fail("the grandchild outlived the stop")


def test_last_line_reads_the_end_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("x" * 10_000 + "\nfirst\n\nlast line  \n\n")
    assert last_line(path) == "last line"
    assert last_line(tmp_path / "missing") == ""


def test_by_default_as_many_jobs_as_cpus_this_process_may_use() -> None:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_jobs() == usable

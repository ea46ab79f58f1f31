"""``gpufleet preview`` over several stacks: one process per stack, a report per stack, a summary, and
the worst stack's exit code; one stack's bad input does not hide the others' results."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.preview.conftest import REPO, STACKS

Run = Callable[..., tuple[int, str, str]]


def test_each_stack_gets_its_report_and_bad_input_wins_the_exit_code(run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    code, stdout, stderr = run_cli("preview", "--stack", str(STACKS / "Pulumi.good.yaml"),
                                   "--stack", str(STACKS / "Pulumi.under.yaml"),
                                   "--stack", str(STACKS / "Pulumi.malformed.yaml"),
                                   "--format", "json", "--output", str(out), "--jobs", "3")
    assert code == 2  # bad input ranks before blocked
    assert sorted(p.name for p in out.iterdir()) == ["good.json", "under.json"]  # no report for bad input
    assert json.loads((out / "good.json").read_text())["verdict"] == "pass"
    assert json.loads((out / "under.json").read_text())["verdict"] == "blocked"
    rows = {line.split("│")[1].strip(): line for line in stdout.splitlines() if line.count("│") > 3}
    assert "pass" in rows["good"] and "good.json" in rows["good"] and f"reports in {out}" in stdout
    assert "blocked" in rows["under"] and " 3 " in rows["under"]
    assert "bad input" in rows["malformed"] and " 2 " in rows["malformed"]
    assert "exit 2 (bad input)" in stdout
    # The failing stack's whole error, on stderr, marked with its name; progress lines too.
    assert f"[malformed] error: {STACKS / 'Pulumi.malformed.yaml'}: 2 errors" in stderr
    assert "[malformed]   - fleet.inference[0].gpu: unknown GPU model 'L5'" in stderr
    assert "gpufleet preview: good started" in stderr and "gpufleet preview: under blocked (exit 3" in stderr


def test_a_directory_of_stacks_one_json_document_on_stdout(run_cli: Run, tmp_path: Path) -> None:
    for name in ("good", "under"):
        shutil.copy(STACKS / f"Pulumi.{name}.yaml", tmp_path / f"Pulumi.{name}.yaml")
    code, stdout, _ = run_cli("preview", "--stack", str(tmp_path), "--format", "json", "--jobs", "1")
    doc = json.loads(stdout)
    assert code == 3 and doc["exit_code"] == 3 and doc["command"] == "preview"
    assert [(s["stack"], s["exit_code"], s["result"]) for s in doc["stacks"]] == [
        ("good", 0, "pass"), ("under", 3, "blocked")]
    assert doc["stacks"][1]["report"]["violations"][0]["policy"] == "capacity-covers-demand"


def test_bad_multi_stack_arguments_fail_before_any_preview(run_cli: Run, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text("{}")
    code, _, err = run_cli("preview", "--stack", str(STACKS / "Pulumi.good.yaml"),
                           "--stack", str(STACKS / "Pulumi.under.yaml"), "--output", str(report))
    assert code == 2 and "with several stacks --output is a directory" in err
    code, _, err = run_cli("preview", "--stack", str(STACKS), "--stack", str(tmp_path / "nope"))
    assert code == 2 and "no such stack file or directory" in err
    code, _, err = run_cli("preview", "--stack", str(STACKS / "Pulumi.good.yaml"), "--stack", str(STACKS),
                           "--jobs", "0")
    assert code == 2 and "--jobs" in err


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _wait_for_descendants(pid: int, *, at_least: int, timeout_s: float = 90) -> set[int]:
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen) < at_least:
        assert time.monotonic() < deadline, "the stacks' previews never started"
        time.sleep(0.1)
        seen |= _descendants(pid)
    return seen


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_every_stack_and_its_policy_pack(sig: signal.Signals, code: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "gpufleet", "preview", "--stack", str(STACKS / "Pulumi.good.yaml"),
                             "--stack", str(STACKS / "Pulumi.under.yaml"), "--jobs", "2"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with proc:
        seen = _wait_for_descendants(proc.pid, at_least=3)  # both previews and at least one policy pack
        proc.send_signal(sig)
        try:
            stderr = proc.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            raise
    assert proc.returncode == code, stderr[-2000:]
    time.sleep(0.5)
    assert not [pid for pid in seen if _alive(pid)], "a stack's preview or policy pack outlived gpufleet"

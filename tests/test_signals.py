"""A CI runner cancelling a job sends SIGTERM (Ctrl-C sends SIGINT): gpufleet stops its children,
removes its temporary files and exits 143 / 130, not 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_preview_stops_the_policy_pack_and_exits_with_the_signal_code(sig: signal.Signals, code: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "gpufleet", "preview", "--stack", "stacks/Pulumi.dev.yaml"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        children: set[int] = set()
        while time.monotonic() < deadline and not children:
            time.sleep(0.1)
            children = _children(proc.pid)
        assert children, "the policy pack never started"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr[-2000:]
    time.sleep(0.5)
    assert not [pid for pid in children if _alive(pid)], "the policy pack outlived gpufleet"

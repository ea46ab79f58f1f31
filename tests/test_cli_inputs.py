"""Input files a pull request can commit: a symlink to /dev/zero, a FIFO, an alias bomb — each is
refused at once with exit 2 by the commands that read them (bounded by each test's own timeout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _gpufleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpufleet", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def hostile(tmp_path: Path) -> dict[str, Path]:
    zero = tmp_path / "Pulumi.zero.yaml"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "Pulumi.fifo.yaml"
    os.mkfifo(fifo)
    bomb = tmp_path / "Pulumi.bomb.yaml"
    lines = ['config:', '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"  {cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    bomb.write_text("\n".join(lines) + "\n  gpufleet:fleet: {}\n")
    return {"zero": zero, "fifo": fifo, "bomb": bomb}


@pytest.mark.parametrize(("kind", "message"), [
    ("zero", "is a device, not a regular file"),
    ("fifo", "is a FIFO, not a regular file"),
    ("bomb", "aliases expand the document past"),
])
@pytest.mark.parametrize("command", ["plan", "preview"])
def test_stack_files_that_would_hang_are_refused(hostile: dict[str, Path], command: str, kind: str,
                                                 message: str) -> None:
    out = _gpufleet(command, "--stack", str(hostile[kind]))
    assert out.returncode == 2, out.stderr[-1500:]
    assert message in out.stderr


def test_place_refuses_dev_zero_as_input() -> None:
    out = _gpufleet("place", "--input", "/dev/zero")
    assert out.returncode == 2 and "is a device, not a regular file" in out.stderr

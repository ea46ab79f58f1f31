"""Report files: checked before the run, never written over an input, replaced atomically."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gpufleet.errors import SpecError
from gpufleet.outputs import check_outputs, write_atomic


def test_an_output_that_is_an_input_is_refused(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text("config: {}\n")
    alias = tmp_path / "link.yaml"
    alias.symlink_to(stack)
    for target in (stack, alias, tmp_path / "." / "Pulumi.dev.yaml"):
        with pytest.raises(SpecError, match="is an input of this run"):
            check_outputs({"--output": target}, [stack])
    assert stack.read_text() == "config: {}\n"


@pytest.mark.parametrize(("target", "expected"), [
    ("missing-dir/report.md", "does not exist"),
    ("/dev/full", "not a regular file"),
    ("chart.txt", "has suffix '.txt'"),
])
def test_bad_output_paths_fail_before_any_work(tmp_path: Path, target: str, expected: str) -> None:
    path = target if target.startswith("/") else str(tmp_path / target)
    with pytest.raises(SpecError, match=expected):
        check_outputs({"--output": path}, [], suffixes={"--output": (".svg", ".md", "")})


def test_write_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")
    write_atomic(target, "new report\n")
    assert target.read_text() == "new report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")

    def disk_full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(SpecError, match="cannot write .*No space left on device"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]

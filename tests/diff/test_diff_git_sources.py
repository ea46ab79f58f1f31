"""`REF:PATH` sides read from git: only a path missing at that ref is an empty side; every other
failure is bad input (exit 2), and what git stores is checked like any stack file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from gpufleet.diff.sources import resolve
from gpufleet.errors import SpecError
from gpufleet.stackfile import load_stack

@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "stacks").mkdir(parents=True)
    (root / "stacks" / "Pulumi.latin.yaml").write_bytes(b"config:\n  gpufleet:fleet: {name: caf\xe9}\n")
    os.symlink("/dev/zero", root / "stacks" / "Pulumi.zero.yaml")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "stacks"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
    return root


@pytest.mark.parametrize(("text", "message"), [
    ("HEAD:../../etc/passwd", "is not a path inside the repository"),
    ("HEAD:/etc/passwd", "is not a path inside the repository"),
    ("-h:stacks/Pulumi.latin.yaml", "is not a git ref"),
    ("no-such-ref:stacks/Pulumi.latin.yaml", "unknown git ref"),
    ("HEAD:stacks", "is not a regular file"),
    ("HEAD:stacks/Pulumi.zero.yaml", "is not a regular file"),
])
def test_git_failures_are_bad_input_not_an_empty_side(repo: Path, tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        resolve(text, tmp_path / "work", repo=repo, label="base")


def test_only_a_missing_path_is_an_empty_side(repo: Path, tmp_path: Path) -> None:
    source = resolve("HEAD:stacks/Pulumi.new.yaml", tmp_path / "work", repo=repo, label="base")
    assert source.path is None and source.stack == "new"


def test_non_utf8_content_from_git_is_refused_with_the_line(repo: Path, tmp_path: Path) -> None:
    source = resolve("HEAD:stacks/Pulumi.latin.yaml", tmp_path / "work", repo=repo, label="head")
    assert source.path is not None
    with pytest.raises(SpecError, match="not valid UTF-8 text: byte 0xe9 at line 2"):
        load_stack(source.path)


def test_the_report_names_an_empty_base_in_its_first_line(run_cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = run_cli("diff", "--base", "HEAD:stacks/Pulumi.none.yaml", "--head", "stacks/Pulumi.dev.yaml")
    assert code == 0
    assert out.splitlines()[0].startswith("### ✅ Passes: new stack")

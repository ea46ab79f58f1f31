"""``gpufleet diff`` end to end: sources (files and git refs), formats, chart and exit codes.

The policy pack run is replaced by the recorded results of each fixture (``policy.json``), so
these tests cover the command, not the pack; the pack's own tests cover the verdicts.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from diff_fixtures import FIXTURES, policy_of, stack_file
from gpufleet.cli import main
from gpufleet.diff import sources


def _fake_preview(stack: Path, policy_config: Path | None) -> dict[str, Any]:
    """The recorded policy results of the fixture the stack file belongs to (by content)."""
    text = stack.read_text()
    for case_dir in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for label in ("head", "base"):
            if (case_dir / label / "Pulumi.fleet.yaml").read_text() == text:
                return policy_of(case_dir.name, label)
    return {"verdict": "pass", "violations": []}


@pytest.fixture(autouse=True)
def _offline_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "default_preview", lambda stack, config, repo=None, root=None: _fake_preview(stack, config))


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["diff", *args])
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


def test_blocked_head_exits_3_with_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--base", str(stack_file("capacity-cut", "base")),
                        "--head", str(stack_file("capacity-cut", "head"))], capsys)
    assert code == 3
    assert out.startswith("### 🚫 Blocked: 2 new mandatory violations")


def test_passing_head_exits_0_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--base", str(stack_file("demand-raised", "base")),
                        "--head", str(stack_file("demand-raised", "head")), "--format", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["verdict"]["status"] == "pass" and data["verdict"]["exit_code"] == 0
    assert data["stack"] == "fleet"
    assert [w["name"] for w in data["workloads"] if w["change"] == "changed"] == ["chat-8b"]
    assert data["totals"]["gpus_by_model"]["L4"]["change"] == 132


def test_chart_and_json_files_with_the_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "out" / "fleet.svg"
    data = tmp_path / "out" / "fleet.json"
    code, out, _ = run(["--base", str(stack_file("site-moved", "base")), "--head", str(stack_file("site-moved", "head")),
                        "--chart", str(chart), "--chart-workload", "summarize-70b", "--json-out", str(data)], capsys)
    assert code == 0
    assert chart.read_text().lstrip().startswith("<?xml")
    assert json.loads(data.read_text())["verdict"]["summary"] == out.splitlines()[0].removeprefix("### ")


@pytest.mark.parametrize("args, message", [
    (["--base", "no/such/Pulumi.x.yaml", "--head", "no/such/Pulumi.x.yaml"], "no such stack file"),
    (["--base", "no-such-ref-xyz:stacks/Pulumi.dev.yaml", "--head", "stacks/Pulumi.dev.yaml"], "unknown git ref"),
    (["--base", "stacks/Pulumi.dev.yaml", "--head", "stacks/Pulumi.dev.yaml", "--format", "html"], "html"),
    (["--base", "stacks/Pulumi.dev.yaml", "--head", "stacks/Pulumi.dev.yaml", "--chart-workload", "nope",
      "--chart", "/tmp/gpufleet-test-never-written.svg"], "no workload named 'nope'"),
    (["--base", "stacks/Pulumi.dev.yaml", "--head", "stacks/Pulumi.dev.yaml", "--chart-workload", "chat-8b"],
     "needs --chart"),
])
def test_bad_input_exits_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(args, capsys)
    assert code == 2
    assert message in err
    assert out == ""


def test_invalid_stack_names_the_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "Pulumi.fleet.yaml"
    bad.write_text(stack_file("unchanged", "head").read_text().replace("power_mw: 4.0", "power_mw: -4"))
    code, _, err = run(["--base", str(stack_file("unchanged", "base")), "--head", str(bad)], capsys)
    assert code == 2
    assert f"head {bad}" in err and "fleet.sites[0].power_mw" in err


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main",
                           "-c", "commit.gpgsign=false", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose main has the base stack; the work tree has the head."""
    _git(tmp_path, "init", "-q")
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.fleet.yaml").write_text(stack_file("demand-raised", "base").read_text())
    _git(tmp_path, "add", "stacks")
    _git(tmp_path, "commit", "-q", "-m", "base")
    (stacks / "Pulumi.fleet.yaml").write_text(stack_file("demand-raised", "head").read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_base_from_a_git_ref(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--base", "main:stacks/Pulumi.fleet.yaml", "--head", "stacks/Pulumi.fleet.yaml",
                        "--format", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["base"]["source"] == "main:stacks/Pulumi.fleet.yaml" and data["base"]["status"] == "present"
    assert data["totals"]["gpus_by_model"]["L4"]["change"] == 132


def test_a_stack_missing_at_the_ref_is_a_new_stack(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = repo / "stacks" / "Pulumi.fresh.yaml"
    new.write_text(stack_file("unchanged", "head").read_text())
    code, out, _ = run(["--base", "main:stacks/Pulumi.fresh.yaml", "--head", str(new)], capsys)
    assert code == 0
    assert out.startswith("### ✅ Passes: new stack, +336 H100, +132 L4")
    assert "base `main:stacks/Pulumi.fresh.yaml` (no such stack: empty)" in out


def test_a_stack_deleted_at_head_ref(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _git(repo, "rm", "-q", "-f", "stacks/Pulumi.fleet.yaml")
    _git(repo, "commit", "-q", "-m", "drop the stack")
    code, out, _ = run(["--base", "HEAD~1:stacks/Pulumi.fleet.yaml", "--head", "HEAD:stacks/Pulumi.fleet.yaml"], capsys)
    assert code == 0
    assert out.startswith("### ✅ Passes: stack removed, -336 H100, -132 L4")


def test_resolve_keeps_the_stack_name(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("work")
    src = sources.resolve("main:stacks/Pulumi.fleet.yaml", work, label="base")
    assert src.stack == "fleet" and src.ref == "main"
    assert src.path is not None and src.path.name == "Pulumi.fleet.yaml"
    assert src.path.read_text() == stack_file("demand-raised", "base").read_text()

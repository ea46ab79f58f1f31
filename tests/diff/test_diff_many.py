"""``gpufleet diff --stack ... --base-ref REF``: several stacks against a git ref, in parallel, each
with its own report, JSON and chart file, a summary, and the worst stack's exit code."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from diff_fixtures import FIXTURES, stack_file

Run = Callable[..., tuple[int, str, str]]
FLOORS = FIXTURES / "policy-config.json"
REPO = Path(__file__).resolve().parents[2]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main",
                    "-c", "commit.gpgsign=false", *args], cwd=repo, capture_output=True, text=True, check=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """main has two stacks' base sides; the work tree has their heads; floors for `cut` only. The
    project runs this repository's program and policy pack."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "Pulumi.yaml").write_text(f"name: gpufleet\nruntime: python\nmain: {REPO / '__main__.py'}\n")
    monkeypatch.setenv("GPUFLEET_POLICY_PACK", str(REPO / "policies"))
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for name, case in (("fleet", "demand-raised"), ("cut", "capacity-cut")):
        (stacks / f"Pulumi.{name}.yaml").write_text(stack_file(case, "base").read_text())
    _git(tmp_path, "add", "stacks")
    _git(tmp_path, "commit", "-q", "-m", "base")
    for name, case in (("fleet", "demand-raised"), ("cut", "capacity-cut")):
        (stacks / f"Pulumi.{name}.yaml").write_text(stack_file(case, "head").read_text())
    (tmp_path / "floors").mkdir()
    (tmp_path / "floors" / "cut.json").write_text(FLOORS.read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_stack_gets_its_report_json_and_chart(run_cli: Run, repo: Path) -> None:
    code, stdout, stderr = run_cli("diff", "--stack", "stacks", "--base-ref", "main", "--policy-config-dir", "floors",
                                   "--output", "out", "--json-out", "out/json", "--chart", "out/charts", "--jobs", "2")
    assert code == 3, stderr  # cut is blocked by its floors; fleet has none and passes
    assert sorted(p.name for p in (repo / "out").glob("*.md")) == ["cut.md", "fleet.md"]
    assert (repo / "out" / "cut.md").read_text().startswith("### 🚫 Blocked: 2 new mandatory violations")
    assert (repo / "out" / "fleet.md").read_text().startswith("### ✅ Passes")
    fleet = json.loads((repo / "out" / "json" / "fleet.json").read_text())
    assert fleet["base"]["source"] == "main:stacks/Pulumi.fleet.yaml"
    assert fleet["totals"]["gpus_by_model"]["L4"]["change"] == 132
    assert sorted(p.name for p in (repo / "out" / "charts").iterdir()) == ["cut.svg", "fleet.svg"]
    rows = {line.split("│")[1].strip(): line for line in stdout.splitlines() if line.count("│") > 3}
    assert list(rows) == ["cut", "fleet"]  # a directory's stacks by name
    assert "blocked" in rows["cut"] and "pass" in rows["fleet"]
    assert "gpufleet diff: cut blocked (exit 3" in stderr


def test_a_bad_stack_gets_no_report_and_its_error(run_cli: Run, repo: Path) -> None:
    (repo / "stacks" / "Pulumi.cut.yaml").write_text("config:\n  gpufleet:fleet: {sites: 3}\n")
    code, stdout, stderr = run_cli("diff", "--stack", "stacks/Pulumi.cut.yaml", "--base-ref", "main",
                                   "--output", "out")
    assert code == 2
    assert stdout.startswith("gpufleet diff: 1 stack ") and "bad input" in stdout  # the summary table
    assert not (repo / "out" / "cut.md").exists()
    assert "[cut] error:" in stderr and "fleet.sites" in stderr


def test_one_stack_with_a_base_ref_is_the_single_stack_diff(run_cli: Run, repo: Path) -> None:
    code, stdout, _ = run_cli("diff", "--stack", "stacks/Pulumi.fleet.yaml", "--base-ref", "main", "--format", "json")
    assert code == 0 and json.loads(stdout)["base"]["source"] == "main:stacks/Pulumi.fleet.yaml"


@pytest.mark.parametrize(("args", "message"), [
    (["--stack", "stacks"], "--stack needs --base-ref REF"),
    (["--stack", "stacks", "--base-ref", "main", "--base", "x"], "--stack cannot be used with --base/--head"),
    (["--base-ref", "main", "--base", "x", "--head", "y"], "go with --stack"),
    (["--head", "stacks/Pulumi.fleet.yaml"], "Missing option '--base'"),
    (["--stack", "stacks", "--base-ref", "main", "--chart-workload", "chat-8b", "--chart", "c"], "fleet (the only chart"),
    (["--stack", "stacks", "--base-ref", "main", "--output", "o", "--json-out", "o", "--format", "json"],
     "is also --output"),
])
def test_bad_flag_combinations_are_bad_input(run_cli: Run, repo: Path, args: list[str], message: str) -> None:
    code, _, err = run_cli("diff", *args)
    assert code == 2 and message in err


def test_each_stack_is_compared_with_its_path_in_the_repository(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from gpufleet.cli._diff_many import base_and_head
    from gpufleet.errors import SpecError

    fleet = repo / "stacks" / "Pulumi.fleet.yaml"
    assert base_and_head(fleet, "main") == ("main:stacks/Pulumi.fleet.yaml", str(fleet))
    # Deleted from the work tree: its head is the last commit's, a stack the change removes.
    assert base_and_head(Path("stacks/Pulumi.gone.yaml"), "main") == (
        "main:stacks/Pulumi.gone.yaml", "HEAD:stacks/Pulumi.gone.yaml")
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "Pulumi.x.yaml"
    elsewhere.write_text("config: {}\n")
    with pytest.raises(SpecError, match="is not inside a git repository"):
        base_and_head(elsewhere, "main")

"""``gpufleet diff`` of stacks whose fleet lives in files: a ``REF:PATH`` side reads its fleet files
as they are at REF, the other side from the working tree."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from gpufleet.diff.sources import _glob_regex, load_side, resolve
from gpufleet.errors import SpecError
from tests.test_stackfile import make_project, split_fleet

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    make_project(root / "infra", split_fleet(), {"gpufleet:fleetFiles": ["fleet/t/*.yaml"]})
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "fleet"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=ENV, capture_output=True)
    work = root / "infra" / "fleet" / "t" / "work.yaml"
    data = yaml.safe_load(work.read_text())
    data["inference"][0]["peak_tokens_per_s"] *= 3  # the working tree raises demand
    work.write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def test_a_ref_side_reads_its_fleet_files_at_the_ref(repo: Path, tmp_path: Path) -> None:
    base_src = resolve("HEAD:infra/stacks/Pulumi.t.yaml", tmp_path / "w", repo=repo, label="base")
    assert base_src.root is not None and (base_src.root / "fleet/t/work.yaml").is_file()
    head_src = resolve(str(repo / "infra/stacks/Pulumi.t.yaml"), tmp_path / "w", repo=repo, label="head")
    base = load_side(base_src, "base", evaluate_policies=False)
    head = load_side(head_src, "head", evaluate_policies=False)
    assert base.plan is not None and head.plan is not None
    chat = [sum(p.gpus for p in side.plan.pools if p.workload == "chat") for side in (base, head)]
    assert chat[0] < chat[1]


def test_a_fleet_file_missing_at_the_ref_is_bad_input(repo: Path, tmp_path: Path) -> None:
    stack = repo / "infra/stacks/Pulumi.t.yaml"
    stack.write_text(yaml.safe_dump({"config": {"gpufleet:fleetFiles": ["fleet/t/*.yaml", "fleet/new.yaml"]}}))
    (repo / "infra/fleet/new.yaml").write_text("carbon_price_per_tonne: 10\n")
    subprocess.run(["git", "commit", "-qam", "stack"], cwd=repo, check=True, env=ENV, capture_output=True)
    source = resolve("HEAD:infra/stacks/Pulumi.t.yaml", tmp_path / "w", repo=repo, label="base")
    with pytest.raises(SpecError, match="(?s)base HEAD:infra/stacks/Pulumi.t.yaml.*no such file 'fleet/new.yaml'"):
        load_side(source, "base", evaluate_policies=False)


def test_diff_cli_against_the_ref(repo: Path, run_cli: Callable[..., tuple[int, str, str]],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "infra")
    code, out, err = run_cli("diff", "--base", "HEAD:infra/stacks/Pulumi.t.yaml", "--head", "stacks/Pulumi.t.yaml",
                             "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    [chat] = [w for w in report["workloads"] if w["name"] == "chat"]
    assert chat["head"]["gpus"] > chat["base"]["gpus"]


@pytest.mark.parametrize("pattern, path, hit", [
    ("fleet/*.yaml", "fleet/a.yaml", True),
    ("fleet/*.yaml", "fleet/x/a.yaml", False),
    ("fleet/**/*.yaml", "fleet/a.yaml", True),
    ("fleet/**/*.yaml", "fleet/x/y/a.yaml", True),
    ("fleet/[ab].yaml", "fleet/c.yaml", True),  # a superset: pathlib's own glob then decides
    ("fleet/a?.yaml", "fleet/a/.yaml", False),
])
def test_the_copy_filter_keeps_everything_the_glob_may_match(pattern: str, path: str, hit: bool) -> None:
    assert bool(_glob_regex(pattern).match(path)) is hit


def _history(growth: float) -> str:
    rows = "".join(f"2025-{m:02d}-01,{20000 * (1 + growth) ** m:.1f}\n" for m in range(1, 9))
    return "date,peak_tokens_per_s\n" + rows


@pytest.mark.parametrize("inline", [True, False], ids=["inline-fleet", "fleet-files"])
def test_a_ref_side_reads_its_history_csvs_at_the_ref(tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]],
                                                      monkeypatch: pytest.MonkeyPatch, inline: bool) -> None:
    """A base side whose services forecast from `history:` plans from the CSVs as they are at the
    ref (relative to the stack file), not from the working tree's, and not as a missing file."""
    root = tmp_path / "repo"
    files = split_fleet()
    chat = files["fleet/t/work.yaml"]["inference"][0]
    del chat["growth_per_month"]
    chat["history"] = "data/chat.csv"
    files["stacks/data/chat.csv"] = _history(0.02)
    config: dict[str, object] = {"gpufleet:fleetFiles": ["fleet/t/*.yaml"]}
    if inline:
        config = {"gpufleet:fleet": {**files.pop("fleet/t/sites.yaml"), **files.pop("fleet/t/work.yaml")}}
    make_project(root / "infra", files, config)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "fleet"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=ENV, capture_output=True)
    (root / "infra/stacks/data/chat.csv").write_text(_history(0.30))  # the working tree's demand grows faster
    monkeypatch.chdir(root / "infra")
    code, out, err = run_cli("diff", "--base", "HEAD:infra/stacks/Pulumi.t.yaml", "--head", "stacks/Pulumi.t.yaml",
                             "--format", "json")
    assert code == 0, err
    [row] = [w for w in json.loads(out)["workloads"] if w["name"] == "chat"]
    assert row["head"]["gpus"] > row["base"]["gpus"]
    base = load_side(resolve("HEAD:infra/stacks/Pulumi.t.yaml", tmp_path / "w", repo=root, label="base"), "base",
                     evaluate_policies=False)
    assert base.plan is not None
    [pool] = base.plan.pools_of("chat")
    assert pool.sizing["inputs"]["growth_per_month"] == pytest.approx(0.02, abs=0.005)


def test_a_history_missing_at_the_ref_is_bad_input_at_its_field(repo: Path, tmp_path: Path) -> None:
    work = repo / "infra/fleet/t/work.yaml"
    data = yaml.safe_load(work.read_text())
    del data["inference"][0]["growth_per_month"]
    data["inference"][0]["history"] = "data/chat.csv"
    work.write_text(yaml.safe_dump(data, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "history"], cwd=repo, check=True, env=ENV, capture_output=True)
    (repo / "infra/stacks/data").mkdir()
    (repo / "infra/stacks/data/chat.csv").write_text(_history(0.02))  # in the working tree only
    source = resolve("HEAD:infra/stacks/Pulumi.t.yaml", tmp_path / "w", repo=repo, label="base")
    with pytest.raises(SpecError) as exc:
        load_side(source, "base", evaluate_policies=False)
    assert exc.value.exit_code == 2
    [issue] = exc.value.issues  # the file named where it is missing: at the ref, not in a temporary copy
    assert issue.message.startswith("history cannot read HEAD:infra/stacks/data/chat.csv"), issue.message
    assert issue.loc.endswith("inference[0].history")

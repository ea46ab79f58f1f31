"""pr.yml's capacity step, run as GitHub runs it: one `gpufleet diff` for every stack the PR changes,
one comment from its per-stack reports.

The step's script runs in a git repository with a base branch and a PR head; `gpufleet` on the PATH
is a stand-in that records its command line and writes the per-stack files the real multi-stack
diff writes (``<stack>.md``, ``<stack>.json``, errors on stderr as ``[<stack>] ...``). The recorded
command line is then parsed by the real ``gpufleet diff`` command, so a flag it does not take fails.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.test_workflows import WORKFLOWS, load

pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("jq") is None,
                                reason="needs git and jq (both on GitHub's ubuntu runners)")

STUB = '''\
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
def values(flag):
    return [args[i + 1] for i, a in enumerate(args) if a == flag]
out, json_dir = Path(values("--output")[0]), Path(values("--json-out")[0])
code = 0
for path in values("--stack"):
    name = Path(path).name.removeprefix("Pulumi.").removesuffix(".yaml")
    if "broken" in name:
        sys.stderr.write(f"gpufleet diff: {name} started\\n[{name}] error: fleet.sites: field required\\n")
        code = 2
        continue
    status = "blocked" if "blocked" in name else "pass"
    (out / f"{name}.md").write_text(f"### `{name}` report ({status})\\n")
    (json_dir / f"{name}.json").write_text(json.dumps({"verdict": {"status": status}}))
    code = code or (3 if status == "blocked" else 0)
sys.exit(code)
'''


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})
    return done.stdout


def write(repo: Path, rel: str, text: str) -> None:
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_text(text)


def pr_repo(tmp_path: Path, changed: list[str], *, delete: bool = True) -> Path:
    """A repository whose base (origin/main) has stacks a, gone and keep, and floors for a; the PR
    head changes each stack in ``changed`` (adding it when new), deletes ``gone`` (``delete``),
    lowers a's floors and edits a README."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for name in ("a", "gone", "keep"):
        write(repo, f"stacks/Pulumi.{name}.yaml", f"config: {{base: {name}}}\n")
    write(repo, "policies/config/a.json", '{"floor": "from base"}\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(repo, "checkout", "-qb", "pr")
    for name in changed:
        write(repo, f"stacks/Pulumi.{name}.yaml", f"config: {{head: {name}}}\n")
    write(repo, "policies/config/a.json", '{"floor": "lowered by the PR"}\n')
    if delete:
        (repo / "stacks/Pulumi.gone.yaml").unlink()
    write(repo, "README.md", "unrelated\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "head")
    return repo


def run_step(repo: Path, tmp_path: Path) -> tuple[list[list[str]], dict[str, str], str]:
    """Run the capacity step's script; returns the recorded gpufleet calls, its outputs, the comment."""
    (step,) = [s for s in load(WORKFLOWS / "pr.yml")["jobs"]["capacity"]["steps"] if s.get("id") == "diff"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "gpufleet"
    stub.write_text(f"#!{sys.executable}\n{STUB}")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    runner = tmp_path / "runner"
    runner.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "BASE_REF": "main",
           "PR_NUMBER": "7", "HEAD_SHA": "abc123", "RUNNER_TEMP": str(runner),
           "GITHUB_OUTPUT": str(runner / "output"), "GITHUB_STEP_SUMMARY": str(runner / "summary"),
           "STUB_LOG": str(tmp_path / "calls.jsonl")}
    done = subprocess.run(["bash", "-c", str(step["run"])], cwd=repo, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr  # the step reports; the next step fails the job
    log = tmp_path / "calls.jsonl"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    outputs = dict(line.split("=", 1) for line in (runner / "output").read_text().splitlines())
    comment = (repo / "out/diff/comment.md").read_text()
    assert (runner / "summary").read_text() == comment
    return calls, outputs, comment


def option(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_one_diff_for_every_changed_stack_and_one_comment(tmp_path: Path) -> None:
    repo = pr_repo(tmp_path, ["a", "b-blocked", "new"])
    calls, outputs, comment = run_step(repo, tmp_path)
    (args,) = calls  # one gpufleet run, not one per stack
    assert args[0] == "diff"
    assert option(args, "--stack") == ["stacks/Pulumi.a.yaml", "stacks/Pulumi.b-blocked.yaml",
                                       "stacks/Pulumi.gone.yaml", "stacks/Pulumi.new.yaml"]  # not keep
    assert option(args, "--base-ref") == ["origin/main"]
    (floors,) = option(args, "--policy-config-dir")
    assert sorted(p.name for p in Path(floors).iterdir()) == ["a.json"]
    assert json.loads((Path(floors) / "a.json").read_text()) == {"floor": "from base"}  # not the PR's
    assert option(args, "--output") == option(args, "--json-out") == option(args, "--chart") == ["out/diff"]
    assert int(option(args, "--max-bytes")[0]) == 60000 // 4

    from gpufleet.cli.diff import diff

    diff.make_context("diff", args[1:])  # the real command takes every flag the workflow gives

    assert comment.startswith("<!-- gpufleet-capacity-report -->\n## gpufleet capacity report")
    assert comment.count("<!-- gpufleet-capacity-report -->") == 1
    for row in ("| `a` | ✅ passes |", "| `b-blocked` | 🚫 blocked |", "| `gone` | ✅ passes |",
                "| `new` | ✅ passes |"):
        assert row in comment
    assert "### `a` report (pass)" in comment and "### `b-blocked` report (blocked)" in comment
    assert outputs == {"blocked": "true", "failed": "false"}


def test_a_stack_without_a_report_shows_its_error_and_fails_the_check(tmp_path: Path) -> None:
    repo = pr_repo(tmp_path, ["a", "broken"])
    calls, outputs, comment = run_step(repo, tmp_path)
    assert len(calls) == 1
    assert "| `broken` | ⚠️ no report (gpufleet diff exited 2) |" in comment and "| `a` | ✅ passes |" in comment
    assert "[broken] error: fleet.sites: field required" in comment
    assert "gpufleet diff: broken started" not in comment  # progress lines stay in the log
    assert outputs == {"blocked": "false", "failed": "true"}


def test_no_changed_stack_runs_nothing(tmp_path: Path) -> None:
    repo = pr_repo(tmp_path, [], delete=False)
    calls, outputs, comment = run_step(repo, tmp_path)
    assert calls == [] and outputs == {"blocked": "false", "failed": "false"}
    assert "No stack file changed in this pull request." in comment

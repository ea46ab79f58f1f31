"""``gpufleet preview`` from the command line: exit codes, violations and formats on the fixture stacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.preview.conftest import CONFIGS, REPO, STACKS

Run = Callable[..., tuple[int, str, str]]

def preview_json(run_cli: Run, stack: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli("preview", "--stack", str(STACKS / stack), "--format", "json", *extra)
    return code, json.loads(out), err


def test_good_stack_passes(run_cli: Run) -> None:
    code, report, err = preview_json(run_cli, "Pulumi.good.yaml")
    assert (code, report["verdict"], report["violations"]) == (0, "pass", [])
    assert report["stack"] == "good"
    assert {w["name"]: w["status"] for w in report["workloads"]} == {"chat-8b": "ok", "pretrain-8b": "ok"}
    assert {s["name"]: s["envelope_mw"] for s in report["sites"]} == {"aws-use1": 2.0, "gcp-usc1": 1.5}
    assert "running the program" in err  # progress goes to stderr, never into the JSON


def test_under_provisioned_stack_is_blocked(run_cli: Run) -> None:
    code, report, _ = preview_json(run_cli, "Pulumi.under.yaml")
    assert code == 3 and report["verdict"] == "blocked"
    [v] = report["violations"]
    assert v["policy"] == "capacity-covers-demand" and v["enforcement"] == "mandatory"
    assert v["message"].startswith("pretrain-8b: 1 node provisioned, the 14-day deadline needs 2 "
                                   "(1 node, 8 H100 short); at 1 node the run takes 26.3 days")
    assert v["resource"].endswith("gpufleet:index:TrainingCluster::pretrain-8b-aws-use1")
    assert v["resource_name"] == "pretrain-8b-aws-use1"


def test_floors_above_the_stack_block_it(run_cli: Run) -> None:
    code, report, _ = preview_json(run_cli, "Pulumi.good.yaml", "--policy-config", str(CONFIGS / "floors-high.json"))
    assert code == 3
    [v] = report["violations"]
    assert v["message"].startswith("chat-8b: 12 nodes provisioned at the 90-day horizon, forecast needs 14 "
                                   "(2 nodes, 8 L4 short)")
    [chat] = [w for w in report["workloads"] if w["name"] == "chat-8b"]
    assert (chat["status"], chat["nodes_needed"], chat["demand_source"]) == ("short", 14, "policy config floor")


def test_advisory_findings_do_not_block(run_cli: Run) -> None:
    code, report, _ = preview_json(run_cli, "Pulumi.good.yaml", "--policy-config",
                                   str(CONFIGS / "floors-high-advisory.json"))
    [v] = report["violations"]
    assert (v["policy"], v["enforcement"]) == ("capacity-covers-demand", "advisory")
    assert (code, report["verdict"]) == (0, "pass")


def test_floors_that_are_met_pass(run_cli: Run) -> None:
    code, report, _ = preview_json(run_cli, "Pulumi.good.yaml", "--policy-config", str(CONFIGS / "floors-met.json"))
    assert (code, report["violations"]) == (0, [])


@pytest.mark.parametrize(("stack", "expected"), [
    ("Pulumi.malformed.yaml", ["fleet.inference[0].growth_per_month", "fleet.inference[0].gpu: unknown GPU model 'L5'"]),
    ("Pulumi.notyaml.yaml", ["not valid YAML"]),
    ("Pulumi.missing.yaml", ["cannot read"]),
])
def test_bad_stack_files_are_bad_input(run_cli: Run, stack: str, expected: list[str]) -> None:
    code, out, err = run_cli("preview", "--stack", str(STACKS / stack))
    assert code == 2 and out == ""
    for text in expected:
        assert text in err


@pytest.mark.parametrize(("config", "expected", "before_the_program"), [
    ("bad-schema.json", ["capacity-covers-demand.floors.chat-8b.peak_tokens_per_s: must be greater than 0, got -9000",
                         "capacity-covers-demand.floors.chat-8b.growth: unknown property",
                         "power-within-envelope.max_utilization: must be at most 1, got 2"], False),
    ("bad-json.json", ["not valid JSON at line 2"], True),
    ("unknown-policy.json", ["capacity-covers-demands: no policy of that name in the pack",
                             "did you mean 'capacity-covers-demand'?"], False),
    ("bad-level.json", ['capacity-covers-demand.enforcementLevel: "strict" is not a valid enforcement level'], True),
    ("missing.json", ["cannot read"], True),
])
def test_bad_policy_config_is_bad_input(run_cli: Run, config: str, expected: list[str],
                                        before_the_program: bool) -> None:
    # A config that is not a policy config fails before anything starts; one the pack's schemas refuse
    # is found while the program runs (the pack describes them), and still fails with no report.
    code, out, err = run_cli("preview", "--stack", str(STACKS / "Pulumi.good.yaml"),
                             "--policy-config", str(CONFIGS / config))
    assert code == 2 and out == ""
    for text in expected:
        assert text in err
    assert ("running the program" not in err) is before_the_program


def test_a_pack_that_does_not_start_is_an_internal_fault(run_cli: Run, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("import sys\nsys.exit('the pack is broken')\n")
    monkeypatch.setenv("GPUFLEET_POLICY_PACK", str(tmp_path))
    code, out, err = run_cli("preview", "--stack", str(STACKS / "Pulumi.good.yaml"))
    assert code == 1 and out == ""
    assert "error: the policy pack at" in err and "the pack is broken" in err


@pytest.mark.parametrize("fmt", ["markdown", "sarif", "text"])
def test_formats_and_output_file(run_cli: Run, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"report.{fmt}"
    code, out, _ = run_cli("preview", "--stack", str(STACKS / "Pulumi.under.yaml"), "--format", fmt,
                           "--output", str(target))
    assert code == 3 and out == ""
    text = target.read_text()
    assert "pretrain-8b" in text
    if fmt == "sarif":
        sarif = json.loads(text)
        assert sarif["version"] == "2.1.0"
        assert any(r["ruleId"] == "capacity-covers-demand" and r["level"] == "error" for r in sarif["runs"][0]["results"])
    elif fmt == "markdown":
        assert text.startswith("### ⛔ gpufleet preview `under`: blocked")
    else:
        assert "BLOCKED by" in text and "\x1b[" not in text  # no colour codes in a file


def test_text_report_on_stdout(run_cli: Run) -> None:
    code, out, _ = run_cli("preview", "--stack", str(STACKS / "Pulumi.under.yaml"))
    assert code == 3
    assert "Capacity against demand" in out and "Power and GPUs per site" in out
    assert "[mandatory] capacity-covers-demand (pretrain-8b-aws-use1)" in out
    assert "BLOCKED by" in out


def test_unknown_format_is_a_usage_error(run_cli: Run) -> None:
    code, _, err = run_cli("preview", "--stack", str(STACKS / "Pulumi.good.yaml"), "--format", "yaml")
    assert code == 2 and "Invalid value for '--format'" in err


def test_a_project_copied_outside_the_repository_previews_with_its_own_program_and_pack(tmp_path: Path) -> None:
    # What an installed wheel sees: a checkout somewhere else, gpufleet run from a third directory.
    project = tmp_path / "project"
    skip = shutil.ignore_patterns("__pycache__", "venv")
    shutil.copytree(REPO / "components", project / "components", ignore=skip)
    shutil.copytree(REPO / "policies", project / "policies", ignore=skip)
    (project / "stacks").mkdir()
    shutil.copy(REPO / "stacks" / "Pulumi.dev.yaml", project / "stacks")
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text().replace("name: gpufleet", "name: copied"))
    (project / "__main__.py").write_text((REPO / "__main__.py").read_text()
                                         + '\npulumi.ComponentResource("gpufleet:test:CopiedProgram", "marker")\n')
    pack = project / "policies" / "PulumiPolicy.yaml"
    pack.write_text(pack.read_text().replace("version: 0.1.0", "version: 0.1.0-copied"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    stack = project / "stacks" / "Pulumi.dev.yaml"
    out = subprocess.run([sys.executable, "-m", "gpufleet", "preview", "--stack", str(stack), "--format", "json"],
                         cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["verdict"] == "pass" and report["policy_pack"]["version"] == "0.1.0-copied"
    assert [r["name"] for r in report["resources"] if r["type"] == "gpufleet:test:CopiedProgram"] == ["marker"]
    assert all("::copied::" in r["urn"] for r in report["resources"])

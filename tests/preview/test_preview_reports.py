"""The preview's reports: the JSON contract, the Rich text, the Markdown PR comment and SARIF 2.1.0."""

from __future__ import annotations

import io
import json
from dataclasses import replace

from rich.console import Console

from gpufleet.engine import Violation
from gpufleet.preview import (
    MARKDOWN_LIMIT_CHARS,
    PreviewResult,
    render,
    render_markdown,
    render_sarif,
    render_text,
)
from tests.preview.conftest import STACKS


def test_json_contract_keys(under: PreviewResult) -> None:
    data = under.to_json()
    assert list(data)[:5] == ["stack", "resources", "violations", "workloads", "verdict"]
    assert data["stack"] == "under" and data["verdict"] == "blocked"
    assert data["schema_version"] == 1 and data["policy_pack"] == {"name": "gpufleet", "version": "0.1.0"}
    for r in data["resources"]:
        assert {"type", "name", "inputs"} <= set(r)
    assert not any(r["type"] == "pulumi:pulumi:Stack" for r in data["resources"])
    for v in data["violations"]:
        assert list(v)[:4] == ["policy", "enforcement", "resource", "message"]
    json.dumps(data)  # plain JSON all the way down


def test_json_is_deterministic(under: PreviewResult) -> None:
    assert render(under, "json") == render(under, "json")
    assert "seconds" not in render(under, "json")


def test_workload_summary(under: PreviewResult) -> None:
    pretrain = next(w for w in under.workloads if w["name"] == "pretrain-8b")
    assert pretrain["role"] == "training" and pretrain["status"] == "short"
    assert (pretrain["nodes_provisioned"], pretrain["nodes_needed"], pretrain["gpus_needed"]) == (1, 2, 16)
    assert round(pretrain["days_at_provisioned"], 1) == 26.3
    chat = next(w for w in under.workloads if w["name"] == "chat-8b")
    assert (chat["nodes_min"], chat["nodes_provisioned"], chat["nodes_needed"], chat["status"]) == (3, 12, 7, "ok")
    assert chat["demand_source"] == "declared by the stack (chat-8b-gcp-usc1)"


def test_site_summary(under: PreviewResult) -> None:
    sites = {s["name"]: s for s in under.sites}
    assert set(sites) == {"aws-use1", "gcp-usc1"}
    assert sites["aws-use1"]["gpus"] == {"H100": 8}
    assert sites["gcp-usc1"]["gpus"] == {"L4": 48}
    assert round(sites["aws-use1"]["power_mw"], 4) == round(10.2 * 1.15 / 1000, 4)


def test_violations_sorted_mandatory_first(under: PreviewResult) -> None:
    levels = [v.blocking for v in under.violations]
    assert levels == sorted(levels, reverse=True)


def test_timings_are_recorded(under: PreviewResult) -> None:
    assert under.seconds_program > 0 and under.seconds_policy > 0 and under.seconds_pack_start > 0


def test_text_report(under: PreviewResult) -> None:
    buf = io.StringIO()
    render_text(under, Console(file=buf, width=200, no_color=True))
    text = buf.getvalue()
    assert text.startswith("gpufleet preview under  23 resources · policy pack gpufleet 0.1.0")
    assert "pretrain-8b" in text and "short" in text
    assert "[mandatory] capacity-covers-demand (pretrain-8b-aws-use1)" in text
    assert text.rstrip().endswith("mandatory violation(s)")


def test_markdown_comment(under: PreviewResult) -> None:
    md = render_markdown(under)
    assert md.startswith("### ⛔ gpufleet preview `under`: blocked\n")
    assert "| pretrain-8b | training | aws-use1 | 1 (8 H100) | 2 (16 H100) | ⛔ short |" in md
    assert "| ⛔ mandatory | `capacity-covers-demand` | pretrain-8b-aws-use1 | pretrain-8b: 1 node provisioned" in md


def test_markdown_stays_under_the_comment_limit(under: PreviewResult) -> None:
    many = [Violation("capacity-covers-demand", "mandatory", f"chat-{i}: " + "x|y " * 200, f"urn:{i}", f"pool-{i}")
            for i in range(2000)]
    md = render_markdown(replace(under, violations=many))
    assert len(md) < MARKDOWN_LIMIT_CHARS
    assert "more violation(s); see the JSON report" in md
    assert "x\\|y" in md  # pipes escaped so the table holds


def test_sarif(under: PreviewResult) -> None:
    sarif = render_sarif(under)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "gpufleet"
    assert {r["id"] for r in rules} >= {"capacity-covers-demand", "power-within-envelope"}
    assert all(r["defaultConfiguration"]["level"] in ("error", "warning") for r in rules)
    result = next(r for r in run["results"] if r["ruleId"] == "capacity-covers-demand")
    assert result["level"] == "error"
    assert rules[result["ruleIndex"]]["id"] == "capacity-covers-demand"
    assert result["message"]["text"].startswith("pretrain-8b: 1 node provisioned")
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "tests/fixtures/preview/Pulumi.under.yaml"
    lines = (STACKS / "Pulumi.under.yaml").read_text().splitlines()
    assert lines[loc["region"]["startLine"] - 1].strip() == "- name: pretrain-8b"
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == under.violations[0].resource
    assert len(result["partialFingerprints"]["gpufleetViolation/v1"]) == 64


def test_reports_of_a_passing_preview(good: PreviewResult) -> None:
    assert (good.verdict, good.exit_code, good.violations) == ("pass", 0, [])
    assert render_sarif(good)["runs"][0]["results"] == []
    assert render_markdown(good).startswith("### ✅ gpufleet preview `good`: pass\n")
    assert "#### Policy violations" not in render_markdown(good)

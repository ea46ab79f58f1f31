"""``gpufleet preflight`` end to end: stack -> build_plan -> checkers -> report and exit code.

AWS runs against the moto server (``--aws-endpoint-url``), with Service Quotas and
DescribeCapacityReservations stubbed (moto 5.2 lacks them; see conftest). Azure and Google run
with no credentials at all, so they must come out "not checked", never as passes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpufleet.clouds.aws.preflight import AwsChecker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "preflight"
SHORTFALL = str(FIXTURES / "Pulumi.shortfall.yaml")
READY = str(FIXTURES / "Pulumi.ready.yaml")


@pytest.fixture
def stubbed_aws(aws_clients: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The command's AWS checker gets moto (+ Stubber for the two APIs moto lacks) as its clients."""
    factory = aws_clients()
    monkeypatch.setattr(AwsChecker, "make_client", lambda self, service, region: factory(service, region))
    return factory


def test_shortfall_stack_reports_three_shortfalls_and_exits_3(
        run_cli: Callable[..., tuple[int, str, str]], moto_url: str, stubbed_aws: Any,
        no_cloud_credentials: None) -> None:
    code, out, err = run_cli("preflight", "--stack", SHORTFALL, "--aws-endpoint-url", moto_url, "--format", "json")
    assert code == 3, err
    report = json.loads(out)
    assert (report["verdict"], report["exit_code"], report["stack"]) == ("shortfall", 3, "shortfall")
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert [(f["kind"], f["site"], f["pools"], f["shortfall_gpus"]) for f in errors] == [
        ("offering", "aws-use1", ["pretrain-b200-aws-use1"], 32),
        ("reservation", "aws-use1", ["finetune-h100-aws-use1"], 16),
        ("quota", "aws-usw2", ["pretrain-h100-aws-usw2"], 192),
    ]
    assert report["shortfall_gpus"] == 240
    offering, reservation, quota = errors
    assert [(a["rank"], a["kind"], a["site"], a["zones"], a["in_spec"]) for a in offering["alternatives"]] == [
        (1, "zone", "aws-use1", ["us-east-1c"], True),
        (2, "site", "aws-usw2", ["us-west-2a", "us-west-2b"], False),  # pretrain-b200 may only use aws-use1
    ]
    assert "add aws-usw2 to the sites of pretrain-b200" in offering["alternatives"][1]["note"]
    assert [(a["rank"], a["kind"], a["covers_gpus"]) for a in reservation["alternatives"]] == [
        (1, "on_demand", 16), (2, "reservation", 8)]
    assert [(a["kind"], a["site"], a["covers_gpus"], a["in_spec"]) for a in quota["alternatives"]] == [
        ("site", "aws-use1", 160, False)]
    unchecked = [f for f in report["findings"] if f["severity"] == "unknown"]
    assert [(f["cloud"], f["kind"], f["site"]) for f in unchecked] == [
        ("azure", "not_checked", "azure-eastus"), ("gcp", "not_checked", "gcp-usc1")]
    passed = {(f["kind"], f["site"]) for f in report["findings"] if f["severity"] == "ok"}
    # p5.48xlarge is described once for both sites that use it.
    assert passed == {("catalog", "aws-use1"), ("catalog", "aws-use1,aws-usw2"), ("offering", "aws-use1"),
                      ("quota", "aws-use1"), ("offering", "aws-usw2")}


def test_shortfall_text_report(run_cli: Callable[..., tuple[int, str, str]], moto_url: str, stubbed_aws: Any,
                               no_cloud_credentials: None) -> None:
    code, out, _ = run_cli("preflight", "--stack", SHORTFALL, "--aws-endpoint-url", moto_url)
    assert code == 3
    lines = out.splitlines()
    assert lines[0] == "gpufleet preflight: shortfall"
    fails = [line for line in lines if line.lstrip().startswith("FAIL")]
    assert fails == [
        "  FAIL       offering     aws-use1        pretrain-b200-aws-use1",
        "  FAIL       reservation  aws-use1        finetune-h100-aws-use1",
        "  FAIL       quota        aws-usw2        pretrain-h100-aws-usw2",
    ]
    assert ("             p6-b200.48xlarge is not offered in us-east-1a; EC2 offers it in us-east-1c of us-east-1. "
            "4 nodes (32 GPUs) are planned there") in lines
    assert "             short by 32 GPUs. Alternatives, best first:" in lines
    assert any(line.startswith("               1. zone -> aws-use1 us-east-1c, p6-b200.48xlarge:") for line in lines)
    assert "  UNCHECKED  not_checked  azure-eastus    serve-h100-azure-eastus" in lines
    assert "  UNCHECKED  not_checked  gcp-usc1        chat-l4-gcp-usc1" in lines
    assert lines[-1].startswith("3 failed, 2 not checked, 0 warnings, ") and lines[-1].endswith("shortfall (exit 3)")


def test_clouds_without_credentials_are_not_checked_exit_4(
        run_cli: Callable[..., tuple[int, str, str]], moto_url: str, stubbed_aws: Any,
        no_cloud_credentials: None) -> None:
    code, out, _ = run_cli("preflight", "--stack", READY, "--aws-endpoint-url", moto_url, "--format", "json")
    assert code == 4
    report = json.loads(out)
    assert report["verdict"] == "incomplete" and report["counts"]["error"] == 0
    assert {(f["cloud"], f["severity"]) for f in report["findings"] if f["cloud"] != "aws"} == {
        ("azure", "unknown"), ("gcp", "unknown")}
    assert {f["severity"] for f in report["findings"] if f["cloud"] == "aws"} == {"ok"}


def test_one_cloud_all_fine_exits_0(run_cli: Callable[..., tuple[int, str, str]], moto_url: str, stubbed_aws: Any,
                                    no_cloud_credentials: None) -> None:
    code, out, _ = run_cli("preflight", "--stack", READY, "--cloud", "aws", "--aws-endpoint-url", moto_url)
    assert code == 0, out
    assert "Azure" not in out and "GCP" not in out
    assert out.splitlines()[-1] == "0 failed, 0 not checked, 0 warnings, 3 ok: ok (exit 0)"


def test_bad_input_exits_2(run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path,
                           write_stack: Callable[..., Path], fleet: dict[str, Any]) -> None:
    code, _, err = run_cli("preflight", "--stack", str(tmp_path / "Pulumi.missing.yaml"))
    assert code == 2 and "cannot read" in err
    fleet["sites"][0]["zones"] = []
    code, _, err = run_cli("preflight", "--stack", str(write_stack(fleet)))
    assert code == 2 and "zones" in err
    code, _, err = run_cli("preflight", "--stack", SHORTFALL, "--cloud", "oci")
    assert code == 2 and "oci" in err

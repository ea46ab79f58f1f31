"""The preflight seam without any cloud: registry, ranking, shortfall arithmetic, report, runner."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from gpufleet.clouds.aws.preflight import AwsChecker
from gpufleet.clouds.azure.preflight import AzureChecker
from gpufleet.clouds.gcp.preflight import GcpChecker
from gpufleet.plan import PoolPlan
from gpufleet.preflight import CHECKERS, Alternative, CloudChecker, Finding, PreflightReport, register, run_preflight
from gpufleet.preflight.base import unfit_gpus
from gpufleet.stackfile import load_stack

REPO = Path(__file__).resolve().parents[2]
SDKS = ("boto3", "botocore", "azure", "google.cloud", "google.auth", "google.api_core")


def test_one_checker_per_cloud_registered_by_decorator() -> None:
    assert CHECKERS == {"aws": AwsChecker, "azure": AzureChecker, "gcp": GcpChecker}

    class Other(_Quiet):
        cloud = "aws"

    with pytest.raises(ValueError, match="already registered"):
        register(Other)


@pytest.mark.parametrize("module", ["gpufleet.preflight", "gpufleet.cli.preflight"])
def test_importing_preflight_loads_no_cloud_sdk(module: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            f"print(','.join(sorted(m for m in sys.modules if m.startswith({SDKS!r}))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def alt(kind: str, site: str, covers: int | None, in_spec: bool = True, zones: tuple[str, ...] = ("z",)) -> Alternative:
    return Alternative(kind, site, "r", zones, "t", covers, in_spec, "")  # type: ignore[arg-type]


def test_ranking_prefers_in_spec_then_full_cover_then_least_disruption() -> None:
    from gpufleet.preflight.base import rank_alternatives

    ranked = rank_alternatives([
        alt("site", "b", 4),                     # in spec, partial
        alt("on_demand", "a", None, False),      # spec change
        alt("site", "c", None),                  # in spec, unbounded
        alt("zone", "a", None),                  # in spec, unbounded, least disruptive
        alt("site", "d", 16),                    # in spec, covers all
        alt("site", "e", 8),                     # in spec, partial but more than b
        alt("zone", "a", None),                  # duplicate: dropped
    ], shortfall_gpus=16)
    assert [(a.rank, a.kind, a.site) for a in ranked] == [
        (1, "zone", "a"), (2, "site", "d"), (3, "site", "c"), (4, "site", "e"), (5, "site", "b"), (6, "on_demand", "a"),
    ]


def test_unfit_gpus_counts_whole_nodes(make_pool: Callable[..., Any]) -> None:
    p5 = make_pool("x-aws", "aws", "s", "r", "p5.48xlarge", {"z": 32})  # 192 vCPUs, 8 GPUs per node
    assert unfit_gpus([p5], lambda p: 192.0, 1536) == 24 * 8
    assert unfit_gpus([p5], lambda p: 192.0, 1535) == 25 * 8
    assert unfit_gpus([p5], lambda p: 192.0, 10_000) == 0
    assert unfit_gpus([p5], lambda p: 192.0, -5) == 32 * 8


def finding(severity: str, kind: str = "offering", **kw: Any) -> Finding:
    return Finding("aws", kind, severity, "aws-use1", ("p",), "ec2:X", "m", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("severities", "code", "verdict"),
    [((), 0, "ok"), (("ok", "warning"), 0, "ok"), (("ok", "unknown"), 4, "incomplete"),
     (("unknown", "error", "ok"), 3, "shortfall")],
)
def test_exit_code(severities: tuple[str, ...], code: int, verdict: str) -> None:
    report = PreflightReport.of("s", [finding(s) for s in severities])
    assert (report.exit_code, report.verdict) == (code, verdict)


def test_text_report_golden() -> None:
    short = Finding("aws", "quota", "error", "aws-usw2", ("train-aws-usw2",), "service-quotas:GetServiceQuota",
                    "P quota is 1,536 vCPUs; the plan needs 3,072", shortfall_gpus=64,
                    alternatives=(Alternative("site", "aws-use1", "us-east-1", ("us-east-1c",), "p5.48xlarge", 64,
                                              True, "room for 8 x p5.48xlarge", rank=1),))
    ok = Finding("aws", "offering", "ok", "aws-usw2", ("train-aws-usw2",), "ec2:DescribeInstanceTypeOfferings",
                 "p5.48xlarge is offered in us-west-2a (us-west-2)")
    gone = Finding("gcp", "not_checked", "unknown", "gcp-usc1", ("chat-gcp-usc1",), "google.auth.default",
                   "not checked: no Google credentials found")
    assert PreflightReport.of("dev", [ok, gone, short]).render_text() == (
        "gpufleet preflight: dev\n"
        "\n"
        "AWS\n"
        "  FAIL       quota        aws-usw2        train-aws-usw2\n"
        "             P quota is 1,536 vCPUs; the plan needs 3,072\n"
        "             short by 64 GPUs. Alternatives, best first:\n"
        "               1. site -> aws-use1 us-east-1c, p5.48xlarge, covers 64 GPUs: room for 8 x p5.48xlarge\n"
        "             (service-quotas:GetServiceQuota)\n"
        "  ok         offering     aws-usw2        train-aws-usw2\n"
        "             p5.48xlarge is offered in us-west-2a (us-west-2)\n"
        "             (ec2:DescribeInstanceTypeOfferings)\n"
        "\n"
        "GCP\n"
        "  UNCHECKED  not_checked  gcp-usc1        chat-gcp-usc1\n"
        "             not checked: no Google credentials found\n"
        "             (google.auth.default)\n"
        "\n"
        "1 failed, 1 not checked, 0 warnings, 1 ok: shortfall (exit 3)\n"
    )


class _Quiet(CloudChecker):
    """A checker whose every check passes; subclasses change one step."""

    credential_source = "test"

    def credentials_problem(self) -> str | None:
        return None

    def check_offerings(self, site: Any, pools: Sequence[PoolPlan], sites: Sequence[Any]) -> list[Finding]:
        return []

    def check_site_catalog(self, site: Any, mine: Sequence[PoolPlan], pools: Sequence[PoolPlan],
                           described: set[str]) -> list[Finding]:
        return []

    def check_quotas(self, pools: Sequence[PoolPlan], sites: Sequence[Any]) -> list[Finding]:
        return []

    def check_reservations(self, site: Any, pools: Sequence[PoolPlan]) -> list[Finding]:
        return []


class _Broken(_Quiet):
    cloud = "aws"

    def credentials_problem(self) -> str | None:
        raise RuntimeError("boom")


class _Fixed(_Quiet):
    cloud = "gcp"

    def check_offerings(self, site: Any, pools: Sequence[PoolPlan], sites: Sequence[Any]) -> list[Finding]:
        return [Finding("gcp", "offering", "error", p.site, (p.name,), "x", "not offered", shortfall_gpus=p.gpus,
                        alternatives=(Alternative("site", "elsewhere", "r", ("z",), p.instance_type, None, True, "fits"),
                                      Alternative("site", p.site, "r", ("z2",), p.instance_type, None, True, "here")))
                for p in pools]


def test_runner_survives_a_broken_checker_and_marks_disallowed_sites(
        make_pool: Callable[..., Any], write_stack: Callable[..., Path], fleet: dict[str, Any]) -> None:
    fleet["sites"].append({"name": "elsewhere", "cloud": "gcp", "region": "us-east5", "zones": ["us-east5-a"],
                           "power_mw": 1.0})
    _, spec = load_stack(write_stack(fleet))
    pools = [make_pool("pretrain-aws-use1", "aws", "aws-use1", "us-east-1", "p5.48xlarge", {"us-east-1a": 1},
                       workload="pretrain"),
             make_pool("chat-gcp", "gcp", "elsewhere", "us-east5", "g2-standard-48", {"us-east5-a": 1},
                       workload="chat")]
    report = run_preflight(pools, spec, stack="t", checkers={"aws": _Broken(), "gcp": _Fixed()})
    by_cloud = {f.cloud: f for f in report.findings}
    assert (by_cloud["aws"].kind, by_cloud["aws"].severity) == ("api_error", "unknown")
    assert "RuntimeError: boom" in by_cloud["aws"].message
    # chat may use every site (no `sites:` in the spec), so both stay in spec.
    assert [a.in_spec for a in by_cloud["gcp"].alternatives] == [True, True]
    assert report.exit_code == 3


def test_runner_skips_clouds_not_selected(make_pool: Callable[..., Any], write_stack: Callable[..., Path],
                                          fleet: dict[str, Any]) -> None:
    _, spec = load_stack(write_stack(fleet))
    pools = [make_pool("pretrain-aws-use1", "aws", "aws-use1", "us-east-1", "p5.48xlarge", {"us-east-1a": 1})]
    report = run_preflight(pools, spec, clouds=["gcp"], checkers={"aws": _Broken()})
    assert report.findings == () and report.exit_code == 0
    assert "nothing to check" in report.render_text()

"""Preflight for the capacity types: AWS spot placement scores (moto 5.2 lacks the API, so against it
the check is "could not be checked"), and the flex-start warning that DWS is best-effort."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from gpufleet.clouds.aws.preflight import SPOT_SCORE_CHECK, AwsChecker
from gpufleet.clouds.gcp.preflight import flex_start_notices
from gpufleet.preflight import PreflightOptions
from gpufleet.preflight.report import PreflightReport

ZONES = {"us-east-1a": 6, "us-east-1c": 6}


def _spot_pool(make_pool: Callable[..., Any]) -> Any:
    return make_pool("chat-aws-use1", "aws", "aws-use1", "us-east-1", "g6e.12xlarge", ZONES, role="inference",
                     spot_nodes=4)


def test_moto_lacks_spot_placement_scores(moto_url: str, aws_env: None) -> None:
    # Why the score is stubbed below; when this fails, check it against the emulator instead.
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_url,
                       config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises((ClientError, ResponseParserError)):
        ec2.get_spot_placement_scores(InstanceTypes=["g6e.12xlarge"], TargetCapacity=4,
                                      RegionNames=["us-east-1"])


def test_against_moto_the_spot_check_could_not_run(moto_url: str, aws_env: None, aws_clients: Any,
                                                   make_site: Any, make_pool: Any) -> None:
    site = make_site("aws-use1", "aws", "us-east-1", ["us-east-1a", "us-east-1c"])
    checker = AwsChecker(PreflightOptions(aws_endpoint_url=moto_url, max_attempts=1, timeout_s=10),
                         client_factory=aws_clients())
    (finding,) = [f for f in checker.check([_spot_pool(make_pool)], [site]) if f.check == SPOT_SCORE_CHECK]
    assert (finding.kind, finding.severity) == ("api_error", "unknown")
    assert finding.message.startswith("the spot placement of 4 x g6e.12xlarge in us-east-1 could not be checked")
    assert PreflightReport.of("t", [finding]).exit_code == 4


class _Scored:
    """An EC2 client answering GetSpotPlacementScores with one score, everything else from moto."""

    def __init__(self, emulated: Any, score: int) -> None:
        self._emulated, self.score, self.asked = emulated, score, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._emulated, name)

    def get_spot_placement_scores(self, **kw: Any) -> dict[str, Any]:
        self.asked.append(kw)
        return {"SpotPlacementScores": [{"Region": "us-east-1", "Score": self.score}]}


@pytest.mark.parametrize(("score", "severity"), [(9, "ok"), (2, "warning")])
def test_the_score_is_judged(moto_url: str, aws_env: None, aws_clients: Any, make_site: Any, make_pool: Any,
                             score: int, severity: str) -> None:
    base = aws_clients()
    scored: list[_Scored] = []

    def factory(service: str, region: str) -> Any:
        client = base(service, region)
        if service == "ec2":
            scored.append(_Scored(client, score))
            return scored[-1]
        return client

    site = make_site("aws-use1", "aws", "us-east-1", ["us-east-1a", "us-east-1c"])
    checker = AwsChecker(PreflightOptions(aws_endpoint_url=moto_url, max_attempts=1, timeout_s=10),
                         client_factory=factory)
    (finding,) = [f for f in checker.check([_spot_pool(make_pool)], [site]) if f.check == SPOT_SCORE_CHECK]
    assert finding.severity == severity and f"score {score}/10" in finding.message
    assert finding.details == {"spot_placement_score": score, "spot_nodes": 4}
    (asked,) = [kw for c in scored for kw in c.asked]
    assert (asked["TargetCapacity"], asked["InstanceTypes"], asked["RegionNames"]) == (4, ["g6e.12xlarge"], ["us-east-1"])


def test_flex_start_is_reported_as_best_effort(make_pool: Any) -> None:
    pool = make_pool("pretrain-gcp-usc1", "gcp", "gcp-usc1", "us-central1", "a3-ultragpu-8g", {"us-central1-b": 4},
                     capacity_type="flex_start", sizing={"days_at_rounded_size": 2.0})
    (finding,) = flex_start_notices([pool])
    assert (finding.severity, finding.kind) == ("warning", "reservation")
    assert finding.message.startswith("flex-start is best-effort, not a reservation: the request for 4 x "
                                      "a3-ultragpu-8g (32 GPUs) in us-central1-b waits")
    assert finding.details["requested_run_duration_s"] == 2 * 86_400
    assert flex_start_notices([pool.__class__(**{**pool.__dict__, "capacity_type": "on_demand"})]) == []

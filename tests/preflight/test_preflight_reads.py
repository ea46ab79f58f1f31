"""The read boundary: each SDK's errors mapped once to a reason, cloud reads imported lazily."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpufleet.catalog import CLOUDS
from gpufleet.preflight import PreflightOptions, checker_for
from gpufleet.preflight.base import checker_module
from gpufleet.preflight.reads import ProviderError, attempt

REPO = Path(__file__).resolve().parents[2]
SDKS = ("boto3", "botocore", "azure", "google.cloud", "google.auth", "google.api_core")


@pytest.mark.parametrize("cloud", CLOUDS)
def test_importing_a_clouds_reads_loads_no_sdk(cloud: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({checker_module(cloud)!r}); "
            f"print(','.join(sorted(m for m in sys.modules if m.startswith({SDKS!r}))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def aws_errors() -> list[tuple[BaseException, str | None]]:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    def client(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": code}}, "Operation")

    return [(client("TooManyRequestsException"), "throttled"), (client("RequestLimitExceeded"), "throttled"),
            (client("InvalidCapacityReservationId.NotFound"), "not_found"), (client("UnauthorizedOperation"), "auth"),
            (client("InternalError"), "failed"), (EndpointConnectionError(endpoint_url="http://x"), "unreachable"),
            (NoCredentialsError(), "auth"), (ValueError("a bug"), None)]


def azure_errors() -> list[tuple[BaseException, str | None]]:
    from azure.core import exceptions as aexc

    throttled = aexc.HttpResponseError("Too Many Requests")
    throttled.status_code = 429
    return [(aexc.ResourceNotFoundError("gone"), "not_found"), (throttled, "throttled"),
            (aexc.ClientAuthenticationError("no token"), "auth"), (aexc.ServiceRequestError("refused"), "unreachable"),
            (aexc.HttpResponseError("Internal Server Error"), "failed"), (ValueError("a bug"), None)]


def gcp_errors() -> list[tuple[BaseException, str | None]]:
    import requests
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import DefaultCredentialsError

    return [(gexc.NotFound("gone"), "not_found"), (gexc.TooManyRequests("slow down"), "throttled"),
            (gexc.RetryError("deadline", cause=gexc.TooManyRequests("slow down")), "throttled"),
            (gexc.RetryError("deadline", cause=gexc.ServiceUnavailable("down")), "failed"),
            (gexc.PermissionDenied("no"), "auth"), (DefaultCredentialsError("none"), "auth"),
            (requests.ConnectionError("refused"), "unreachable"), (ValueError("a bug"), None)]


@pytest.mark.parametrize(("cloud", "errors"), [("aws", aws_errors), ("azure", azure_errors), ("gcp", gcp_errors)])
def test_each_sdks_errors_map_to_one_reason(cloud: str, errors: Callable[[], list[tuple[BaseException, Any]]]) -> None:
    # The reason reaches the report as an api_error's details.reason; an exception that is not the
    # SDK's is a bug and goes on unmapped (the runner reports the cloud's checker as failed).
    classify = checker_for(cloud).sdk.classify  # type: ignore[attr-defined]
    for exc, reason in errors():
        def fail(exc: BaseException = exc) -> None:
            raise exc

        if reason is None:
            with pytest.raises(type(exc)):
                attempt(fail, classify)
            continue
        mapped = attempt(fail, classify)
        assert isinstance(mapped, ProviderError) and (mapped.reason, mapped.cause) == (reason, exc), repr(exc)


def test_unreachable_endpoint_is_reported_as_such(aws_env: None, make_site: Callable[..., Any],
                                                  make_pool: Callable[..., Any]) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = make_site("aws-use1", "aws", "us-east-1", ["us-east-1a"])
    p5 = make_pool("serve-h100-aws-use1", "aws", "aws-use1", "us-east-1", "p5.48xlarge", {"us-east-1a": 1})
    options = PreflightOptions(aws_endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1, timeout_s=2)
    findings = checker_for("aws")(options).check([p5], [site])
    assert {(f.kind, f.severity) for f in findings} == {("api_error", "unknown")}
    assert {f.details["reason"] for f in findings} == {"unreachable"}
    assert "EndpointConnectionError" in findings[0].message

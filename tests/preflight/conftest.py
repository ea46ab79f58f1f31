"""Fixtures for the preflight tests: the AWS emulator, recorded HTTP for Azure and Google, credentials.

* AWS goes to a real moto server on 127.0.0.1: the one ``.ci/run`` starts (``GPUFLEET_MOTO_URL``) or,
  when that is unset, one started here for the session and stopped at its end.
* The two AWS APIs moto 5.2 does not implement (EC2 quotas in Service Quotas, and
  ``DescribeCapacityReservations``) are answered by botocore's ``Stubber`` from
  ``tests/fixtures/preflight/aws_stubs.json``; ``test_moto_still_lacks_the_stubbed_apis`` fails when
  moto starts implementing them, so the stubs can go.
* Azure and Google run their real SDK clients; only the HTTP layer is replaced, by a ``requests``
  adapter that answers from recorded JSON (``tests/fixtures/preflight/*.json``), so parsing, paging,
  retries and error mapping are the SDKs' own. An unrecorded request fails the test: nothing can
  reach the network.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter

from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "preflight"
MOTO_URL_ENV = "GPUFLEET_MOTO_URL"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
PROJECT = "gpufleet-preflight"

# google-api-core warns at import about Google's own Python support schedule (3.11 here).
_GOOGLE_PYTHON_NOTICE = "ignore:You are using a Python version:FutureWarning"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings(_GOOGLE_PYTHON_NOTICE))
            if "moto_url" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.moto)


# --- AWS: the emulator and the stubs --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """The moto server's URL: CI's (GPUFLEET_MOTO_URL), or one started on 127.0.0.1 for this session."""
    url = os.environ.get(MOTO_URL_ENV)
    if url:
        assert urlsplit(url).hostname in LOCAL_HOSTS, f"{MOTO_URL_ENV} must point at this machine, got {url}"
        yield url.rstrip("/")
        return
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        found = shutil.which("moto_server")
        if found is None:
            pytest.fail("moto_server not found: pip install 'moto[server]' (or set GPUFLEET_MOTO_URL)")
        binary = Path(found)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited with {proc.returncode} before answering")
            if time.monotonic() > deadline:
                pytest.fail("moto_server did not answer within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy AWS credentials (moto accepts any) and no shared files or instance metadata."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class RoutedClient:
    """An EC2 client whose listed operations go to a Stubber-backed client, the rest to moto."""

    def __init__(self, emulated: Any, stubbed: Any, operations: set[str]) -> None:
        self._emulated = emulated
        self._stubbed = stubbed
        self._operations = operations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stubbed if name in self._operations else self._emulated, name)

    def get_paginator(self, operation: str) -> Any:
        return (self._stubbed if operation in self._operations else self._emulated).get_paginator(operation)


def load_stubs(name: str = "aws_stubs.json") -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


@pytest.fixture
def aws_clients(moto_url: str, aws_env: None) -> Callable[..., Callable[[str, str], Any]]:
    """Build a ``(service, region) -> client`` factory: moto for EC2 offerings and instance types,
    botocore Stubber for Service Quotas and ``describe_capacity_reservations`` (moto lacks both).

    Call it with a stubs document (default: ``aws_stubs.json``); ``stubbers`` on the factory lists
    the Stubbers it created.
    """
    import boto3
    from botocore.config import Config
    from botocore.stub import Stubber

    def build(stubs: dict[str, Any] | None = None) -> Callable[[str, str], Any]:
        stubs = load_stubs() if stubs is None else stubs
        stubbers: list[Any] = []

        def stubbed(service: str, region: str) -> Any:
            client = boto3.client(service, region_name=region, endpoint_url=moto_url,
                                  config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
            stubber = Stubber(client)
            for entry in stubs.get(service, {}).get(region, []):
                if "error" in entry:
                    err = entry["error"]
                    stubber.add_client_error(entry["method"], service_error_code=err["code"],
                                             service_message=err["message"], http_status_code=err["http_status"],
                                             expected_params=entry.get("expected_params"))
                else:
                    stubber.add_response(entry["method"], entry["response"], entry.get("expected_params"))
            stubber.activate()
            stubbers.append(stubber)
            return client

        def factory(service: str, region: str) -> Any:
            if service == "ec2":
                emulated = boto3.client("ec2", region_name=region, endpoint_url=moto_url)
                return RoutedClient(emulated, stubbed("ec2", region), {"describe_capacity_reservations"})
            return stubbed(service, region)

        factory.stubbers = stubbers  # type: ignore[attr-defined]
        return factory

    return build


# --- Azure and Google: recorded HTTP ----------------------------------------------------------------


class RecordedAdapter(HTTPAdapter):
    """A ``requests`` adapter that answers from recorded interactions and never opens a socket.

    Each interaction answers once (or every time, with ``"repeat": true``): the first pending one
    whose method, scheme, host and path match, and whose recorded query parameters are all in the
    request. ``requests`` lists what was asked.
    """

    def __init__(self, interactions: list[dict[str, Any]]) -> None:
        super().__init__()
        self.pending = list(interactions)
        self.requests: list[tuple[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        method, url = str(request.method), str(request.url)
        self.requests.append((method, url))
        for i, item in enumerate(self.pending):
            if item["method"] == method and _matches(item["url"], url):
                answer = item if item.get("repeat") else self.pending.pop(i)
                break
        else:
            raise AssertionError(f"unrecorded request: {method} {url}")
        body = json.dumps(answer["body"]).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(body)),
                   **answer.get("headers", {})}
        raw = urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=answer["status"],
                                   reason=_REASONS.get(answer["status"], "OK"), preload_content=False,
                                   decode_content=False)
        return self.build_response(request, raw)


_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _matches(recorded: str, actual: str) -> bool:
    r, a = urlsplit(recorded), urlsplit(actual)
    if (r.scheme, r.netloc, r.path) != (a.scheme, a.netloc, a.path):
        return False
    asked = dict(parse_qsl(a.query, keep_blank_values=True))
    return all(asked.get(k) == v for k, v in parse_qsl(r.query, keep_blank_values=True))


def recorded(name: str) -> RecordedAdapter:
    return RecordedAdapter(json.loads((FIXTURES / name).read_text())["interactions"])


class FakeAzureCredential:
    """A TokenCredential that hands out a dummy ARM token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("recorded-token", int(time.time()) + 3600)


@pytest.fixture
def azure_client_factory() -> Callable[[RecordedAdapter], Callable[[Any, str], Any]]:
    """``adapter -> (credential, subscription) -> ComputeManagementClient`` over recorded HTTP,
    with azure-core's own RetryPolicy (three attempts, near-zero backoff)."""

    def build(adapter: RecordedAdapter) -> Callable[[Any, str], Any]:
        from azure.core.pipeline.transport import RequestsTransport
        from azure.mgmt.compute import ComputeManagementClient

        session = requests.Session()
        session.mount("https://", adapter)
        session.mount("http://", adapter)

        def factory(credential: Any, subscription: str) -> Any:
            return ComputeManagementClient(credential, subscription,
                                           transport=RequestsTransport(session=session, session_owner=False),
                                           retry_total=2, retry_backoff_factor=0.001, retry_backoff_max=0.01)

        return factory

    return build


@pytest.fixture
def gcp_client_factory() -> Callable[[RecordedAdapter], Callable[[str, Any], Any]]:
    """``adapter -> (kind, credentials) -> compute_v1 client`` on the REST transport, whose
    ``requests`` session gets the recorded adapter (the way the generated clients' own tests patch
    ``transport._session``)."""

    def build(adapter: RecordedAdapter) -> Callable[[str, Any], Any]:
        from google.auth.credentials import AnonymousCredentials

        from gpufleet.clouds.gcp.preflight import GcpChecker

        def factory(kind: str, credentials: Any) -> Any:
            client = GcpChecker().make_client(kind, AnonymousCredentials())
            client.transport._session.mount("https://", adapter)
            client.transport._session.mount("http://", adapter)
            return client

        return factory

    return build


@pytest.fixture
def no_cloud_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Azure or Google credentials anywhere: environment, CLI configs, tools on PATH."""
    for name in list(os.environ):
        if name.startswith(("AZURE_", "GOOGLE_", "CLOUDSDK_", "GCE_METADATA")) or name in (
                "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "GCLOUD_PROJECT"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no az, azd, pwsh or gcloud to ask


# --- plan pieces -------------------------------------------------------------------------------------


def site(name: str, cloud: str, region: str, zones: list[str], **extra: Any) -> SiteSpec:
    return SiteSpec.model_validate({"name": name, "cloud": cloud, "region": region, "zones": zones,
                                    "power_mw": 5.0, **extra})


def pool(name: str, cloud: str, site_name: str, region: str, instance_type: str, nodes_by_zone: dict[str, int],
         **extra: Any) -> PoolPlan:
    """A PoolPlan with the catalog's figures for ``instance_type``."""
    from gpufleet.catalog import load_catalog

    row = load_catalog().instance(instance_type)
    nodes = sum(nodes_by_zone.values())
    fields: dict[str, Any] = dict(
        name=name, workload=name.rsplit("-", 2)[0], role="training", cloud=cloud, site=site_name, region=region,
        zones=tuple(nodes_by_zone), nodes_by_zone=dict(nodes_by_zone), instance_type=instance_type,
        fallback_instance_types=(), gpu=row.gpu, gpus_per_node=row.gpus, nodes=nodes, min_nodes=nodes,
        gpus=nodes * row.gpus, node_power_kw=row.node_power_kw or 10.0, pue=1.2,
        power_kw=nodes * (row.node_power_kw or 10.0) * 1.2, usd_per_hour=None, fabric=row.fabric,
        fabric_interfaces=row.fabric_interfaces, fabric_gbps=row.fabric_gbps,
    )
    fields.update(extra)
    return PoolPlan(**fields)


@pytest.fixture
def make_site() -> Callable[..., SiteSpec]:
    return site


@pytest.fixture
def make_pool() -> Callable[..., PoolPlan]:
    return pool


@pytest.fixture
def recorded_http() -> Callable[[str], RecordedAdapter]:
    """``name -> RecordedAdapter`` loaded from ``tests/fixtures/preflight/<name>``."""
    return recorded


@pytest.fixture
def azure_credential() -> FakeAzureCredential:
    return FakeAzureCredential()

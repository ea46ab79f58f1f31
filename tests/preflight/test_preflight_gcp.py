"""GCP checks through google-cloud-compute's real REST clients over recorded HTTP (no network).

The clients are compute_v1's MachineTypesClient, RegionsClient and ReservationsClient with
``transport="rest"`` and anonymous credentials; their ``requests`` session answers from
``tests/fixtures/preflight/gcp_*.json``, so JSON parsing, 404 -> NotFound and the Retry on 503 are
google-api-core's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from gpufleet.clouds.gcp.preflight import GcpChecker, detect_credentials
from gpufleet.preflight import PreflightOptions

PROJECT = "gpufleet-preflight"


@pytest.fixture
def sites(make_site: Callable[..., Any]) -> list[Any]:
    return [
        make_site("gcp-usc1", "gcp", "us-central1", ["us-central1-a", "us-central1-b"], project=PROJECT),
        make_site("gcp-use5", "gcp", "us-east5", ["us-east5-a", "us-east5-b"], project=PROJECT),
    ]


def make_checker(adapter: Any, gcp_client_factory: Callable[..., Any]) -> GcpChecker:
    options = PreflightOptions(backoff_initial_s=0.001, backoff_max_s=0.01, retry_deadline_s=5, timeout_s=5)
    return GcpChecker(options, credentials=object(), client_factory=gcp_client_factory(adapter))


def test_zone_not_offering_the_machine_type_and_l4_quota(recorded_http: Callable[..., Any],
                                                         gcp_client_factory: Callable[..., Any], sites: list[Any],
                                                         make_pool: Callable[..., Any]) -> None:
    h200 = make_pool("train-h200-gcp-usc1", "gcp", "gcp-usc1", "us-central1", "a3-ultragpu-8g", {"us-central1-a": 4})
    l4 = make_pool("chat-l4-gcp-usc1", "gcp", "gcp-usc1", "us-central1", "g2-standard-48",
                   {"us-central1-a": 2, "us-central1-b": 2}, role="inference")
    adapter = recorded_http("gcp_regions.json")
    findings = make_checker(adapter, gcp_client_factory).check([h200, l4], sites)
    by = {(f.kind, f.pools): f for f in findings}

    offering = by[("offering", ("train-h200-gcp-usc1",))]
    assert (offering.severity, offering.shortfall_gpus) == ("error", 32)
    assert offering.message.startswith("a3-ultragpu-8g is not offered in us-central1-a (machineTypes.get: 404")
    assert [(a.rank, a.kind, a.site, a.zones) for a in offering.alternatives] == [
        (1, "zone", "gcp-usc1", ("us-central1-b",)),
        (2, "site", "gcp-use5", ("us-east5-a",)),
    ]
    assert by[("offering", ("chat-l4-gcp-usc1",))].severity == "ok"
    catalog = by[("catalog", ("chat-l4-gcp-usc1",))]
    assert catalog.message == "g2-standard-48: 4 x nvidia-l4, 48 vCPUs, as in the catalog"

    # NVIDIA_L4_GPUS in us-central1: 8 free, the pool needs 4 x 4 = 16; us-east5 has 24 free.
    quota = by[("quota", ("chat-l4-gcp-usc1",))]
    assert (quota.severity, quota.shortfall_gpus) == ("error", 8)
    assert quota.message.startswith("NVIDIA_L4_GPUS in us-central1: 8 GPUs free (0 used of 8); the plan needs 16 GPUs")
    [alt] = quota.alternatives
    assert (alt.kind, alt.site, alt.covers_gpus, alt.zones) == ("site", "gcp-use5", 8, ("us-east5-a", "us-east5-b"))
    # The H200 metric comes from the machine type's accelerator (nvidia-h200-141gb), found in zone b.
    h200_quota = by[("quota", ("train-h200-gcp-usc1",))]
    assert h200_quota.severity == "ok" and h200_quota.details["metric"] == "NVIDIA_H200_GPUS"
    assert not adapter.pending


def test_unavailable_region_is_retried(recorded_http: Callable[..., Any], gcp_client_factory: Callable[..., Any],
                                       sites: list[Any], make_pool: Callable[..., Any]) -> None:
    l4 = make_pool("chat-l4-gcp-usc1", "gcp", "gcp-usc1", "us-central1", "g2-standard-48",
                   {"us-central1-a": 2, "us-central1-b": 2}, role="inference")
    adapter = recorded_http("gcp_throttled.json")
    findings = make_checker(adapter, gcp_client_factory).check([l4], sites[:1])
    assert {(f.kind, f.severity) for f in findings} == {("offering", "ok"), ("catalog", "ok"), ("quota", "ok")}
    assert sum("/regions/" in url for _, url in adapter.requests) == 2  # 503, then 200
    assert not adapter.pending


def test_persistent_failure_is_an_api_error(recorded_http: Callable[..., Any], gcp_client_factory: Callable[..., Any],
                                            sites: list[Any], make_pool: Callable[..., Any]) -> None:
    l4 = make_pool("chat-l4-gcp-usc1", "gcp", "gcp-usc1", "us-central1", "g2-standard-48", {"us-central1-a": 2})
    adapter = recorded_http("gcp_unavailable.json")
    options = PreflightOptions(backoff_initial_s=0.001, backoff_max_s=0.002, retry_deadline_s=0.3, timeout_s=5)
    checker = GcpChecker(options, credentials=object(), client_factory=gcp_client_factory(adapter))
    findings = checker.check([l4], sites[:1])
    [err] = [f for f in findings if f.kind == "api_error"]
    assert err.check == "compute:regions.get" and err.severity == "unknown"
    assert "RetryError" in err.message or "ServiceUnavailable" in err.message
    assert ("offering", "ok") in {(f.kind, f.severity) for f in findings}
    assert sum("/regions/" in url for _, url in adapter.requests) > 1  # retried until the deadline


def test_gpu_without_a_listed_metric_is_not_checked(recorded_http: Callable[..., Any],
                                                    gcp_client_factory: Callable[..., Any], sites: list[Any],
                                                    make_pool: Callable[..., Any]) -> None:
    b200 = make_pool("train-b200-gcp-usc1", "gcp", "gcp-usc1", "us-central1", "a4-highgpu-8g", {"us-central1-b": 2})
    adapter = recorded_http("gcp_unlisted_metric.json")
    [quota] = make_checker(adapter, gcp_client_factory).check_quotas([b200], sites[:1])
    assert (quota.kind, quota.severity) == ("quota", "unknown")
    assert "lists no NVIDIA_B200_GPUS quota" in quota.message and "GPUS_PER_GPU_FAMILY" in quota.message


def test_reservations(recorded_http: Callable[..., Any], gcp_client_factory: Callable[..., Any], sites: list[Any],
                      make_pool: Callable[..., Any]) -> None:
    missing = make_pool("a-h200-gcp-usc1", "gcp", "gcp-usc1", "us-central1", "a3-ultragpu-8g", {"us-central1-b": 4},
                        capacity_type="reservation", reservation_id="h200-missing")
    small = make_pool("b-h200-gcp-usc1", "gcp", "gcp-usc1", "us-central1", "a3-ultragpu-8g", {"us-central1-b": 4},
                      capacity_type="reservation",
                      reservation_id=f"projects/{PROJECT}/zones/us-central1-b/reservations/h200-small")
    adapter = recorded_http("gcp_reservations.json")
    findings = make_checker(adapter, gcp_client_factory).check([missing, small], sites[:1])
    by = {(f.kind, f.pools[0]): f for f in findings}
    gone = by[("reservation", "a-h200-gcp-usc1")]
    assert (gone.severity, gone.shortfall_gpus) == ("error", 32)
    assert gone.message.startswith("reservation h200-missing does not exist in us-central1-b")
    short = by[("reservation", "b-h200-gcp-usc1")]
    assert (short.severity, short.shortfall_gpus) == ("error", 16)
    assert "it has room for 2 of 4 VMs, the pool needs 4" in short.message
    assert not any(f.kind == "quota" for f in findings)  # reserved capacity holds its quota already
    assert not adapter.pending


def test_no_credentials_fails_fast_and_is_not_checked(no_cloud_credentials: None, sites: list[Any],
                                                      make_pool: Callable[..., Any]) -> None:
    start = time.monotonic()
    credentials, project, problem = detect_credentials()
    assert credentials is None and problem is not None and problem.startswith("no Google credentials found")
    l4 = make_pool("chat-l4-gcp-usc1", "gcp", "gcp-usc1", "us-central1", "g2-standard-48", {"us-central1-a": 2})
    [f] = GcpChecker().check([l4], sites)
    assert (f.kind, f.severity, f.site) == ("not_checked", "unknown", "gcp-usc1")
    assert time.monotonic() - start < 5  # the GCE metadata probe is answered at once off Google Cloud

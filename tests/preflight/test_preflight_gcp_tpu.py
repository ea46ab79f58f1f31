"""GCP preflight for Cloud TPU pools: accelerator types per zone through google-cloud-tpu's real REST
client over recorded HTTP (no network); TPU quota and reservations: test_preflight_gcp_tpu_quota.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gpufleet.clouds.gcp.preflight import GcpChecker
from gpufleet.preflight import PreflightOptions

PROJECT = "gpufleet-preflight"
ZONES = ["us-east5-a", "us-east5-b", "us-east5-c"]


@pytest.fixture
def sites(make_site: Callable[..., Any]) -> list[Any]:
    return [make_site("gcp-use5", "gcp", "us-east5", ZONES, project=PROJECT),
            make_site("gcp-usc1", "gcp", "us-central1", ["us-central1-a"], project=PROJECT)]


def test_tpu_types_per_zone(recorded_http: Callable[..., Any],
                                                  gcp_client_factory: Callable[..., Any], sites: list[Any],
                                                  make_pool: Callable[..., Any]) -> None:
    train = make_pool("pretrain-tpu-gcp-use5", "gcp", "gcp-use5", "us-east5", "ct5p-hightpu-4t", {"us-east5-a": 16},
                      topology="4x4x4", accelerator_kind="tpu")
    chat = make_pool("chat-tpu-gcp-use5", "gcp", "gcp-use5", "us-east5", "ct6e-standard-8t",
                     {"us-east5-b": 2, "us-east5-c": 2}, role="inference", topology="2x4", accelerator_kind="tpu")
    adapter = recorded_http("gcp_tpu.json")
    adapter.pending += recorded_http("gcp_tpu_quota.json").pending
    options = PreflightOptions(backoff_initial_s=0.001, backoff_max_s=0.01, retry_deadline_s=5, timeout_s=5)
    checker = GcpChecker(options, credentials=object(), client_factory=gcp_client_factory(adapter))
    findings = checker.check([train, chat], sites)
    by = {(f.kind, f.pools): f for f in findings}

    ok = by[("offering", ("pretrain-tpu-gcp-use5",))]
    assert (ok.severity, ok.check) == ("ok", "tpu:acceleratorTypes.list")
    # us-east5-c: the TPU API serves no such location (404) - no v6e there.
    short = by[("offering", ("chat-tpu-gcp-use5",))]
    assert (short.severity, short.shortfall_gpus) == ("error", 16)
    assert short.message.startswith("ct6e-standard-8t is not offered in us-east5-c (acceleratorTypes.list lists no "
                                    "slice of it there)")
    for pool in ("pretrain-tpu-gcp-use5", "chat-tpu-gcp-use5"):  # the Cloud TPU quota, not regions.get
        assert by[("quota", (pool,))].check == "cloudquotas:quotaInfos.list (tpu.googleapis.com)"
    assert not any(f.kind == "catalog" for f in findings)  # the TPU API states no chips or vCPUs per VM
    assert all("compute.googleapis.com" not in url for _, url in adapter.requests)


def test_a_zone_listing_the_generation_but_not_the_slice_is_short(
        recorded_http: Callable[..., Any], gcp_client_factory: Callable[..., Any], sites: list[Any],
        make_pool: Callable[..., Any]) -> None:
    # us-east5-a lists v5p-8, -128 and -256 but no v5p-1024 (8x8x8).
    big = make_pool("big-tpu-gcp-use5", "gcp", "gcp-use5", "us-east5", "ct5p-hightpu-4t", {"us-east5-a": 128},
                    topology="8x8x8", accelerator_kind="tpu")
    adapter = recorded_http("gcp_tpu.json")
    checker = GcpChecker(PreflightOptions(timeout_s=5), credentials=object(),
                         client_factory=gcp_client_factory(adapter))
    [offering] = checker.check_offerings(sites[0], [big], sites)
    assert (offering.severity, offering.shortfall_gpus) == ("error", 512)
    assert "its 8x8x8 slice is not (acceleratorTypes.list)" in offering.message

"""Azure checks through the real ComputeManagementClient over recorded HTTP (no network).

The client is azure-mgmt-compute's own, with azure-core's RequestsTransport over a ``requests``
session whose adapter answers from ``tests/fixtures/preflight/azure_*.json``: paging (``nextLink``),
model parsing, RetryPolicy and error mapping are the SDK's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from gpufleet.clouds.azure.preflight import AzureChecker, detect_credential
from gpufleet.preflight import PreflightOptions

SUB = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def sites(make_site: Callable[..., Any]) -> list[Any]:
    return [
        make_site("azure-eastus", "azure", "eastus", ["1", "2"], subscription_id=SUB),
        make_site("azure-westus3", "azure", "westus3", ["1", "2"], subscription_id=SUB),
    ]


@pytest.fixture
def serve(make_pool: Callable[..., Any]) -> Any:
    # 4 x ND96isr_H100_v5 (96 vCPUs, 8 H100 each) over zones 1 and 2 of eastus.
    return make_pool("serve-h100-azure-eastus", "azure", "azure-eastus", "eastus", "Standard_ND96isr_H100_v5",
                     {"1": 2, "2": 2}, role="inference")


def make_checker(adapter: Any, azure_client_factory: Callable[..., Any], credential: Any) -> AzureChecker:
    return AzureChecker(PreflightOptions(), credential=credential, client_factory=azure_client_factory(adapter))


def test_restricted_zone_quota_and_catalog(recorded_http: Callable[..., Any], azure_client_factory: Callable[..., Any],
                                           azure_credential: Any, sites: list[Any], serve: Any) -> None:
    adapter = recorded_http("azure_regions.json")
    findings = make_checker(adapter, azure_client_factory, azure_credential).check([serve], sites)
    by = {(f.kind, f.details.get("quota", "")): f for f in findings}

    # Zone 2 is restricted for the subscription (restrictions[type=Zone]); zone 3 is offered but
    # not declared; westus3 offers the size in zones 1 and 2.
    offering = by[("offering", "")]
    assert (offering.severity, offering.shortfall_gpus) == ("error", 16)
    assert offering.message == ("Standard_ND96isr_H100_v5 is not available in zones 2 of eastus (restricted for this "
                                "subscription in 2); it is offered in zones 1, 3. 2 nodes (16 GPUs) are planned there")
    assert [(a.rank, a.kind, a.site, a.zones, a.in_spec) for a in offering.alternatives] == [
        (1, "site", "azure-westus3", ("1", "2"), True),
        (2, "zone", "azure-eastus", ("3",), False),
    ]

    # standardNDSH100v5Family: 192 vCPUs free in eastus, the pool needs 4 x 96 = 384: 2 VMs short.
    family = by[("quota", "standardNDSH100v5Family")]
    assert (family.severity, family.shortfall_gpus) == ("error", 16)
    assert "short by 192 vCPUs, 16 GPUs" in family.message
    [alt] = family.alternatives
    assert (alt.kind, alt.site, alt.covers_gpus) == ("site", "azure-westus3", 16)

    total = by[("quota", "cores")]
    assert total.severity == "ok" and "Total Regional vCPUs in eastus: the plan needs 384 vCPUs, 1,900 of 2,000" in total.message
    catalog = by[("catalog", "")]
    assert catalog.severity == "ok"
    assert not adapter.pending, "every recorded response was used (paging followed nextLink)"
    assert sum("skus" in url for _, url in adapter.requests) == 3  # eastus page 1, page 2, westus3


def test_region_wide_restriction(recorded_http: Callable[..., Any], azure_client_factory: Callable[..., Any],
                                 azure_credential: Any, sites: list[Any], make_pool: Callable[..., Any]) -> None:
    h200 = make_pool("train-h200-azure-eastus", "azure", "azure-eastus", "eastus", "Standard_ND96isr_H200_v5", {"1": 2})
    checker = make_checker(recorded_http("azure_regions.json"), azure_client_factory, azure_credential)
    [f] = checker.check_offerings(sites[0], [h200], sites[:1])
    assert f.severity == "error"
    assert f.message.startswith("Standard_ND96isr_H200_v5 is restricted for this subscription "
                                "(NotAvailableForSubscription) in eastus")


def test_throttled_call_is_retried_by_the_sdk(recorded_http: Callable[..., Any],
                                              azure_client_factory: Callable[..., Any], azure_credential: Any,
                                              sites: list[Any], serve: Any) -> None:
    adapter = recorded_http("azure_throttled.json")
    checker = make_checker(adapter, azure_client_factory, azure_credential)
    findings = checker.check_quotas([serve], sites[:1])
    assert {f.severity for f in findings} == {"ok"}
    assert sum("usages" in url for _, url in adapter.requests) == 2  # 429, then 200
    assert not adapter.pending


def test_unavailable_api_is_an_api_error_per_check(recorded_http: Callable[..., Any],
                                                   azure_client_factory: Callable[..., Any], azure_credential: Any,
                                                   sites: list[Any], serve: Any) -> None:
    adapter = recorded_http("azure_unavailable.json")
    serve_z1 = replace(serve, zones=("1",), nodes_by_zone={"1": 4})
    findings = make_checker(adapter, azure_client_factory, azure_credential).check([serve_z1], sites[:1])
    assert {(f.kind, f.severity) for f in findings} == {("offering", "ok"), ("catalog", "ok"), ("api_error", "unknown")}
    [err] = [f for f in findings if f.kind == "api_error"]
    assert err.check == "compute:usage.list" and "ServiceUnavailable" in err.message
    assert sum("usages" in url for _, url in adapter.requests) == 3  # retry_total=2: three attempts


def test_capacity_reservation_groups(recorded_http: Callable[..., Any], azure_client_factory: Callable[..., Any],
                                     azure_credential: Any, sites: list[Any], make_pool: Callable[..., Any]) -> None:
    group = (f"/subscriptions/{SUB}/resourceGroups/gpufleet-azure-eastus/providers/Microsoft.Compute/"
             "capacityReservationGroups/crg-h100")
    missing = make_pool("a-h100-azure-eastus", "azure", "azure-eastus", "eastus", "Standard_ND96isr_H100_v5",
                        {"1": 2}, capacity_type="reservation", reservation_id="crg-missing")
    small = make_pool("b-h100-azure-eastus", "azure", "azure-eastus", "eastus", "Standard_ND96isr_H100_v5",
                      {"1": 2}, capacity_type="reservation", reservation_id=group)
    adapter = recorded_http("azure_reservations.json")
    findings = make_checker(adapter, azure_client_factory, azure_credential).check_reservations(sites[0], [missing, small])
    by = {f.pools[0]: f for f in findings}
    gone = by["a-h100-azure-eastus"]
    assert (gone.severity, gone.shortfall_gpus) == ("error", 16)
    assert "crg-missing does not exist in resource group gpufleet-azure-eastus" in gone.message
    short = by["b-h100-azure-eastus"]
    assert (short.severity, short.shortfall_gpus) == ("error", 8)  # 2 reserved, 1 in use: room for 1 of 2
    assert "has room for 1 x Standard_ND96isr_H100_v5" in short.message
    assert not adapter.pending


def test_subscription_missing_is_not_checked(azure_credential: Any, make_site: Callable[..., Any],
                                             serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    site = make_site("azure-eastus", "azure", "eastus", ["1", "2"])
    [f] = AzureChecker(credential=azure_credential).check([serve], [site])
    assert (f.kind, f.severity) == ("not_checked", "unknown")
    assert "no subscription_id and AZURE_SUBSCRIPTION_ID is unset" in f.message


def test_no_credentials_fails_fast_and_is_not_checked(no_cloud_credentials: None, sites: list[Any],
                                                      serve: Any) -> None:
    start = time.monotonic()
    credential, problem = detect_credential()
    assert credential is None and problem is not None and problem.startswith("no Azure credentials found")
    [f] = AzureChecker().check([serve], sites)
    assert (f.kind, f.severity, f.site) == ("not_checked", "unknown", "azure-eastus")
    assert time.monotonic() - start < 10  # no IMDS probe

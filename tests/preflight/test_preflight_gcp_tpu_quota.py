"""Cloud TPU quota per zone (Cloud Quotas API) and TPU reservations (TPU API v2alpha1) in GCP preflight,
through google-cloud-quotas' and google-cloud-tpu's real REST clients over recorded HTTP (no network).

tests/fixtures/preflight/gcp_tpu_quota.json: TPUV5PPerProjectPerZoneForTPUAPI 128 in us-east5-a (0
elsewhere); TPUV6EPerProjectPerZoneForTPUAPI 8 in us-east5-b and 64 in every other zone; the v6e ids
on a second page; three TPU reservations in us-east5-a (answered by a fake v2alpha1 client with the
library's own messages: v2alpha1 ships no REST transport).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from gpufleet.clouds.gcp.preflight import GcpChecker
from gpufleet.clouds.gcp.tpu_quota import QUOTA_CHECK, RESERVATION_CHECK
from gpufleet.preflight import PreflightOptions
from gpufleet.preflight.report import PreflightReport

PROJECT = "gpufleet-preflight"
ZONES = ["us-east5-a", "us-east5-b", "us-east5-c"]
FAST = PreflightOptions(backoff_initial_s=0.001, backoff_max_s=0.01, retry_deadline_s=5, timeout_s=5)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "preflight"
STACK = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.gcp-tpu.yaml"


@pytest.fixture
def sites(make_site: Callable[..., Any]) -> list[Any]:
    return [make_site("gcp-use5", "gcp", "us-east5", ZONES, project=PROJECT)]


class FakeReservations:
    """``tpu_v2alpha1.TpuClient`` as the reads call it: ``list_reservations`` answers, per zone, the
    ``ListReservationsResponse`` recorded under ``reservations`` in the fixtures (the library's own
    message, parsed from its JSON form), with the request the client would send."""

    def __init__(self, fixtures: Sequence[str]) -> None:
        self.answers: dict[str, Any] = {}
        self.requests: list[Any] = []
        for name in fixtures:
            self.answers.update(json.loads((FIXTURES / name).read_text()).get("reservations", {}))

    def list_reservations(self, *, parent: str, retry: Any = None, timeout: Any = None) -> list[Any]:
        from google.cloud import tpu_v2alpha1

        self.requests.append(tpu_v2alpha1.ListReservationsRequest(parent=parent))
        if parent not in self.answers:
            from google.api_core.exceptions import NotFound

            raise NotFound(f"no location {parent}")
        return list(tpu_v2alpha1.ListReservationsResponse.from_json(json.dumps(self.answers[parent])).reservations)


@pytest.fixture
def checker(recorded_http: Callable[..., Any], gcp_client_factory: Callable[..., Any]) -> Callable[..., GcpChecker]:
    def build(*fixtures: str) -> GcpChecker:
        adapter = recorded_http(fixtures[0])
        for name in fixtures[1:]:
            adapter.pending += recorded_http(name).pending
        real = gcp_client_factory(adapter)
        reservations = FakeReservations(fixtures)

        def factory(kind: str, credentials: Any) -> Any:
            return reservations if kind == "tpu_reservations" else real(kind, credentials)

        made = GcpChecker(FAST, credentials=object(), client_factory=factory)
        made.adapter = adapter  # type: ignore[attr-defined]
        return made

    return build


def v5p(make_pool: Callable[..., Any], name: str, nodes: int, **extra: Any) -> Any:
    """A v5p training pool of ``nodes`` 4-chip VMs in us-east5-a."""
    topology = {16: "4x4x4", 8: "2x4x4", 4: "2x2x4"}[nodes]
    return make_pool(name, "gcp", "gcp-use5", "us-east5", "ct5p-hightpu-4t", {"us-east5-a": nodes},
                     topology=topology, accelerator_kind="tpu", **extra)


def v6e(make_pool: Callable[..., Any], name: str, by_zone: dict[str, int], **extra: Any) -> Any:
    """A v6e inference pool of 8-chip VMs."""
    return make_pool(name, "gcp", "gcp-use5", "us-east5", "ct6e-standard-8t", by_zone, role="inference",
                     topology="2x4", accelerator_kind="tpu", **extra)


def quota_findings(findings: list[Any]) -> dict[tuple[str, ...], Any]:
    return {f.pools: f for f in findings if f.kind in ("quota", "api_error")}


def test_the_stack_pools_against_the_zone_quotas(checker: Callable[..., GcpChecker], sites: list[Any],
                                                 make_pool: Callable[..., Any]) -> None:
    train = v5p(make_pool, "pretrain-tpu-gcp-use5", 16)
    chat = v6e(make_pool, "chat-tpu-gcp-use5", {"us-east5-b": 2, "us-east5-c": 2})
    made = checker("gcp_tpu.json", "gcp_tpu_quota.json")
    findings = made.check([train, chat], sites)
    quota = [f for f in findings if f.kind == "quota"]
    by = {(f.pools, f.details["zone"]): f for f in quota}

    # 64 v5p chips = 128 TensorCores: within the limit counted either way.
    ok = by[(("pretrain-tpu-gcp-use5",), "us-east5-a")]
    assert (ok.severity, ok.check) == ("ok", QUOTA_CHECK)
    assert ok.message.startswith("TPUV5PPerProjectPerZoneForTPUAPI (v5p on-demand) in us-east5-a: the plan needs "
                                 "64 chips (pretrain-tpu-gcp-use5 64), the quota allows 128")
    assert "not the usage" in ok.message and ok.details["usage_known"] is False
    # v6e: 16 chips in us-east5-b against its own value 8 - blocked, with zone, generation, asked and allowed.
    short = by[(("chat-tpu-gcp-use5",), "us-east5-b")]
    assert (short.severity, short.shortfall_gpus) == ("error", 8)
    assert short.message.startswith("TPUV6EPerProjectPerZoneForTPUAPI (v6e on-demand) in us-east5-b: the quota "
                                    "allows 8, the plan needs 16 chips")
    assert (short.details["needed_chips"], short.details["limit"], short.details["generation"]) == (16, 8, "v6e")
    # us-east5-c takes the value without a zone dimension (64), read from the second page.
    assert by[(("chat-tpu-gcp-use5",), "us-east5-c")].severity == "ok"
    assert PreflightReport.of("gcp-tpu", findings).exit_code == 3


def test_pools_sharing_a_zone_and_generation_sum(checker: Callable[..., GcpChecker], sites: list[Any],
                                                 make_pool: Callable[..., Any]) -> None:
    # Each pool alone fits in us-east5-c's 64 chips; together (40 + 32 = 72) they do not.
    a = v6e(make_pool, "chat-a-gcp-use5", {"us-east5-c": 5})
    b = v6e(make_pool, "chat-b-gcp-use5", {"us-east5-c": 4})
    made = checker("gcp_tpu_quota.json")
    [found] = made.check_quotas([a, b], sites)
    assert (found.severity, found.pools) == ("error", ("chat-a-gcp-use5", "chat-b-gcp-use5"))
    assert "the plan needs 72 chips (chat-a-gcp-use5 40, chat-b-gcp-use5 32): short by 8 chips" in found.message
    [alone] = made.check_quotas([a], sites)
    assert alone.severity == "ok"


def test_pools_within_their_zones_can_exceed_the_region(checker: Callable[..., GcpChecker], sites: list[Any],
                                                        make_pool: Callable[..., Any]) -> None:
    # 32 chips in each of two zones: each zone's 64 holds them, the region's 48 does not hold 64.
    pool = v6e(make_pool, "chat-gcp-use5", {"us-east5-b": 4, "us-east5-c": 4})
    findings = checker("gcp_tpu_quota_region.json").check_quotas([pool], sites)
    assert [(f.severity, f.details.get("zone") or f.details["region"]) for f in findings] == [
        ("ok", "us-east5-b"), ("ok", "us-east5-c"), ("error", "us-east5")]
    region = findings[-1]
    assert region.message.startswith("TPUV6EPerProjectPerRegionForTPUAPI (v6e on-demand) in us-east5: the quota "
                                     "allows 48, the plan needs 64 chips (chat-gcp-use5 64): short by 16 chips")
    assert region.shortfall_gpus == 16
    # The first fixture lists no regional ids: the zonal findings stand alone, no regional one is made up.
    assert all("zone" in f.details for f in checker("gcp_tpu_quota.json").check_quotas([pool], sites))


def test_a_pool_within_its_quota_passes(checker: Callable[..., GcpChecker], sites: list[Any],
                                        make_pool: Callable[..., Any]) -> None:
    pool = v6e(make_pool, "chat-gcp-use5", {"us-east5-a": 1, "us-east5-c": 8})
    findings = checker("gcp_tpu_quota.json").check_quotas([pool], sites)
    assert [(f.severity, f.details["zone"], f.details["needed_chips"]) for f in findings] == [
        ("ok", "us-east5-a", 8), ("ok", "us-east5-c", 64)]
    assert PreflightReport.of("gcp-tpu", findings).exit_code == 0


def test_v5p_counted_in_chips_or_tensorcores_is_not_a_pass_in_between(
        checker: Callable[..., GcpChecker], sites: list[Any], make_pool: Callable[..., Any]) -> None:
    # 128 in us-east5-a: 64 chips (128 TensorCores) pass, 32 chips pass, but 80 chips (160 TensorCores) fit
    # only if the quota counts chips - not checked, never a pass; and 0 elsewhere blocks.
    made = checker("gcp_tpu_quota.json")
    big = make_pool("big-gcp-use5", "gcp", "gcp-use5", "us-east5", "ct5p-hightpu-4t", {"us-east5-a": 20},
                    topology="4x4x4", accelerator_kind="tpu")
    [between] = made.check_quotas([big], sites)
    assert between.severity == "unknown"
    assert "160 TensorCores" in between.message and "chips or TensorCores" in between.message
    elsewhere = make_pool("b-gcp-use5", "gcp", "gcp-use5", "us-east5", "ct5p-hightpu-4t", {"us-east5-b": 4},
                          topology="2x2x4", accelerator_kind="tpu")
    [none] = made.check_quotas([elsewhere], sites)
    assert (none.severity, none.shortfall_gpus) == ("error", 16)


def test_an_unreadable_quota_is_not_checked_exit_4(checker: Callable[..., GcpChecker], sites: list[Any],
                                                   make_pool: Callable[..., Any], tmp_path: Path) -> None:
    denied = {"interactions": [{
        "method": "GET", "status": 403, "repeat": True,
        "url": f"https://cloudquotas.googleapis.com/v1/projects/{PROJECT}/locations/global/services/"
               "tpu.googleapis.com/quotaInfos",
        "body": {"error": {"code": 403, "status": "PERMISSION_DENIED",
                           "message": "Permission 'cloudquotas.quotas.get' denied on resource"}}}]}
    fixture = FIXTURES / "gcp_tpu_quota_denied.json"
    assert json.loads(fixture.read_text())["interactions"] == denied["interactions"]
    a = v6e(make_pool, "chat-a-gcp-use5", {"us-east5-b": 1, "us-east5-c": 1})
    b = v5p(make_pool, "train-gcp-use5", 4)
    findings = checker("gcp_tpu_quota_denied.json").check_quotas([a, b], sites)
    [failed] = findings  # one finding for the project's failed read, naming every pool it leaves unchecked
    assert (failed.kind, failed.severity, failed.check) == ("api_error", "unknown", QUOTA_CHECK)
    assert set(failed.pools) == {"chat-a-gcp-use5", "train-gcp-use5"} and failed.details["reason"] == "auth"
    assert "cloudquotas.quotas.get" in failed.message
    assert PreflightReport.of("gcp-tpu", findings).exit_code == 4


def test_a_quota_id_the_service_does_not_list_is_not_checked(
        checker: Callable[..., GcpChecker], sites: list[Any], make_pool: Callable[..., Any]) -> None:
    # Flex-start draws on preemptible quota; the fixture's project lists no v5e quota at all.
    flex = make_pool("ft-gcp-use5", "gcp", "gcp-use5", "us-east5", "ct6e-standard-8t", {"us-east5-b": 2},
                     topology="4x4", accelerator_kind="tpu", capacity_type="flex_start")
    v5e = make_pool("v5e-gcp-use5", "gcp", "gcp-use5", "us-east5", "ct5lp-hightpu-8t", {"us-east5-b": 2},
                    topology="4x4", accelerator_kind="tpu")
    findings = quota_findings(checker("gcp_tpu_quota.json").check_quotas([flex, v5e], sites))
    assert findings[("ft-gcp-use5",)].message.startswith(
        "TPUV6EPreemptiblePerProjectPerZoneForTPUAPI (v6e preemptible) in us-east5-b: the plan needs 16 chips")
    missing = findings[("v5e-gcp-use5",)]
    assert missing.severity == "unknown"
    assert missing.message.startswith("the Cloud TPU service lists no quota TPUV5sLitepodPerProjectPerZoneForTPUAPI "
                                      "in project gpufleet-preflight (it lists no v5e quota)")


def test_quotas_not_read_here_say_what_to_check(checker: Callable[..., GcpChecker], sites: list[Any],
                                                make_pool: Callable[..., Any]) -> None:
    gke = v6e(make_pool, "gke-gcp-use5", {"us-east5-b": 1}, platform="kubernetes")
    serving = make_pool("v5e-serve-gcp-use5", "gcp", "gcp-use5", "us-east5", "ct5lp-hightpu-8t", {"us-east5-b": 1},
                        role="inference", topology="2x4", accelerator_kind="tpu")
    made = checker("gcp_tpu_quota.json")
    findings = quota_findings(made.check_quotas([gke, serving], sites))
    assert findings[("gke-gcp-use5",)].severity == "unknown"
    assert "Compute Engine API quota (compute.googleapis.com)" in findings[("gke-gcp-use5",)].message
    assert "tpu-v5s-litepod-serving" in findings[("v5e-serve-gcp-use5",)].message
    assert made.adapter.requests == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("reservation", "nodes", "severity", "words"), [
    # 256 TensorCores, 64 used: room for 96 chips.
    ("v5p-committed", 16, "ok", "TPU reservation v5p-committed in us-east5-a is ACTIVE with room for 96 chips "
                                "(192 of 256 cores free); res-gcp-use5 needs 64"),
    ("v5p-small", 16, "error", "it has room for 32 chips (32 of 64 chips free), res-gcp-use5 needs 64"),
    ("v5p-later", 4, "error", "its state is APPROVED, not ACTIVE"),
    ("projects/gpufleet-preflight/locations/us-east5-a/reservations/gone", 4, "error",
     "TPU reservation gone in us-east5-a does not exist (the TPU API lists v5p-committed, v5p-later, v5p-small "
     "there)"),
])
def test_tpu_reservations(checker: Callable[..., GcpChecker], sites: list[Any], make_pool: Callable[..., Any],
                          reservation: str, nodes: int, severity: str, words: str) -> None:
    pool = v5p(make_pool, "res-gcp-use5", nodes, capacity_type="reservation", reservation_id=reservation)
    made = checker("gcp_tpu_quota.json")
    [found] = made.check_reservations(sites[0], [pool])
    assert made.adapter.requests == []  # type: ignore[attr-defined]  # the TPU API's reservations, not Compute's
    assert (found.kind, found.severity, found.check) == ("reservation", severity, RESERVATION_CHECK)
    assert words in found.message
    assert made.check_quotas([pool], sites) == []  # a reserved pool draws on no on-demand quota


def test_preflight_on_the_tpu_stack_without_credentials_says_what_it_could_not_check(
        run_cli: Callable[..., tuple[int, str, str]], no_cloud_credentials: None) -> None:
    code, out, _ = run_cli("preflight", "--stack", str(STACK), "--format", "json")
    assert code == 4
    report = json.loads(out)
    assert report["verdict"] == "incomplete" and report["counts"]["error"] == 0
    [finding] = report["findings"]
    assert (finding["kind"], finding["severity"]) == ("not_checked", "unknown")
    assert set(finding["pools"]) == {"pretrain-tpu-gcp-use5", "chat-tpu-gcp-use5"}
    assert "no Google credentials found" in finding["message"]


def test_a_reserved_gke_tpu_pool_is_judged_on_its_compute_reservation(
        checker: Callable[..., GcpChecker], sites: list[Any], make_pool: Callable[..., Any]) -> None:
    # GKE consumes a Compute Engine reservation of the TPU machine type: the Compute reservations read.
    pool = v5p(make_pool, "gke-res-gcp-use5", 4, capacity_type="reservation", reservation_id="v5p-committed",
               platform="kubernetes")
    made = checker("gcp_tpu_quota.json")
    with pytest.raises(AssertionError, match="unrecorded request: GET https://compute.googleapis.com/compute/v1/"
                                             "projects/gpufleet-preflight/zones/us-east5-a/reservations/v5p-committed"):
        made.check_reservations(sites[0], [pool])


def test_spot_tpu_vms_draw_on_preemptible_quota_apart_from_the_on_demand_ones(
        checker: Callable[..., GcpChecker], sites: list[Any], make_pool: Callable[..., Any]) -> None:
    # 3 VMs (24 chips) in us-east5-b, 2 of them Spot: 8 on-demand chips against the on-demand 8, and 16
    # spot chips against the preemptible 64. Counted all as on-demand, the pool would be short by 16.
    pool = v6e(make_pool, "chat-gcp-use5", {"us-east5-b": 3}, spot_nodes=2, spot_nodes_by_zone={"us-east5-b": 2})
    findings = checker("gcp_tpu_quota.json").check_quotas([pool], sites)
    assert sorted((f.severity, f.details["quota_type"], f.details["quota_id"], f.details["needed_chips"])
                  for f in findings) == [
        ("ok", "on_demand", "TPUV6EPerProjectPerZoneForTPUAPI", 8),
        ("ok", "preemptible", "TPUV6EPreemptiblePerProjectPerZoneForTPUAPI", 16)]
    # One more on-demand VM there is over the on-demand quota; the spot VMs still fit theirs.
    more = v6e(make_pool, "chat-gcp-use5", {"us-east5-b": 4}, spot_nodes=2, spot_nodes_by_zone={"us-east5-b": 2})
    by_type = {f.details["quota_type"]: f for f in checker("gcp_tpu_quota.json").check_quotas([more], sites)}
    assert (by_type["on_demand"].severity, by_type["on_demand"].details["needed_chips"]) == ("error", 16)
    assert by_type["preemptible"].severity == "ok"

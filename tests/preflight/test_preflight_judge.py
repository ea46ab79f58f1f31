"""The judge without any SDK: canned facts in, findings out, in every cloud's words."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from gpufleet import clouds
from gpufleet.catalog import CLOUDS, load_catalog
from gpufleet.plan import PoolPlan
from gpufleet.preflight import checker_for
from gpufleet.preflight.judge import Judge
from gpufleet.preflight.reads import (
    InstanceFacts,
    Offering,
    ProviderError,
    Quota,
    QuotaRoom,
    Reservation,
    ReservationRef,
    Sdk,
    UnknownQuota,
)
from gpufleet.preflight.wording import Wording
from gpufleet.spec import SiteSpec

TYPES = {"aws": "p5.48xlarge", "azure": "Standard_ND96isr_H100_v5", "gcp": "a3-highgpu-8g"}
"""An 8 x H100 type of each cloud."""


class Canned(Judge):
    """A checker whose reads answer from dictionaries; a ProviderError in them is raised."""

    sdk = Sdk(lambda exc: None)

    def __init__(self, cloud: str, *, offered: Mapping[str, Any], room: Mapping[str, Any] | None = None,
                 reservations: Mapping[str, Any] | None = None, totals: bool = False) -> None:
        self.cloud = cloud
        super().__init__()
        self.offered = offered  # region -> {type: zones}, or a ProviderError
        self.room = room or {}  # region -> QuotaRoom, None or a ProviderError
        self.reserved = reservations or {}  # reservation id -> Reservation or None
        self.totals = totals  # pools also draw on a regional total

    def wording(self) -> Wording:  # type: ignore[override]
        return checker_for(self.cloud).wording()  # type: ignore[attr-defined,no-any-return]

    def credentials_problem(self) -> str | None:
        return None

    @staticmethod
    def _answer(table: Mapping[str, Any], key: str) -> Any:
        value = table.get(key)
        if isinstance(value, ProviderError):
            raise value
        return value

    def offerings(self, site: SiteSpec, instance_types: Sequence[str], zones: Sequence[str]) -> dict[str, Offering]:
        region = self._answer(self.offered, site.region) or {}
        return {t: Offering(t, frozenset(region.get(t, ())), listed=t in region, lists_region=True)
                for t in instance_types}

    def instance_facts(self, site: SiteSpec, wanted: Mapping[str, Sequence[str]]) -> dict[str, InstanceFacts]:
        rows = {t: self.catalog.instance(t) for t in wanted}
        return {t: InstanceFacts(gpus=r.gpus, vcpus=r.vcpus) for t, r in rows.items()}

    def quotas_of(self, site: SiteSpec, pool: PoolPlan) -> tuple[Quota, ...] | UnknownQuota:
        if pool.instance_type.startswith("unknown"):
            return UnknownQuota("no quota is known for it")
        family = Quota("Q-1", "GPU family quota")
        return (family, Quota("total", "Total", total=True)) if self.totals else (family,)

    def quota_scope(self, site: SiteSpec) -> str:
        return site.region

    def quota_room(self, site: SiteSpec, quota: Quota) -> QuotaRoom | None:
        return self._answer(self.room, site.region)  # type: ignore[no-any-return]

    def reservation_ref(self, site: SiteSpec, pool: PoolPlan) -> ReservationRef:
        rid = pool.reservation_id or ""
        return ReservationRef(rid, rid, f"reservation {rid}", f"in {site.region}")

    def reservation(self, site: SiteSpec, pool: PoolPlan, ref: ReservationRef) -> Reservation | None:
        return self._answer(self.reserved, ref.id)  # type: ignore[no-any-return]


@pytest.fixture
def sites(make_site: Callable[..., SiteSpec]) -> Callable[[str], list[SiteSpec]]:
    return lambda cloud: [make_site(f"{cloud}-r1", cloud, "r1", ["r1-a", "r1-b"]),
                          make_site(f"{cloud}-r2", cloud, "r2", ["r2-a", "r2-b"])]


def throttled() -> ProviderError:
    return ProviderError("throttled", RuntimeError("Rate exceeded"))


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_clouds_words_render_every_finding(cloud: str, sites: Callable[[str], list[SiteSpec]],
                                                 make_pool: Callable[..., PoolPlan]) -> None:
    # The same facts on every cloud: r1 offers the type in r1-a and r1-c (not r1-b), its quota has
    # room for one node; r2 offers it everywhere with room; reservations missing, short, scheduled, fine.
    itype = TYPES[cloud]
    vcpus = float(load_catalog().instance(itype).vcpus)
    reserved = min(clouds.profile(cloud).capacity_types - {"on_demand"})
    r1, r2 = sites(cloud)
    pools = [make_pool(f"a-{cloud}", cloud, r1.name, "r1", itype, {"r1-a": 2, "r1-b": 2}),
             make_pool(f"b-{cloud}", cloud, r2.name, "r2", itype, {"r2-a": 1}),
             *(make_pool(f"{rid}-{cloud}", cloud, r2.name, "r2", itype, {"r2-a": 2}, capacity_type=reserved,
                         reservation_id=rid) for rid in ("gone", "small", "later", "fits"))]
    facts = Canned(cloud, offered={"r1": {itype: {"r1-a", "r1-c"}}, "r2": {itype: {"r2-a", "r2-b"}}},
                   room={"r1": QuotaRoom(limit=vcpus, used=0.0), "r2": QuotaRoom(limit=100 * vcpus, used=0.0)},
                   reservations={"gone": None,
                                 "small": Reservation("small", itype, "r2-a", "ok", True, room=1, total=4),
                                 "later": Reservation("later", itype, "r2-a", "soon", False, room=2, total=2,
                                                      scheduled=True, starts="2027-01-01"),
                                 "fits": Reservation("fits", itype, "r2-a", "ok", True, room=4, total=4)})
    findings = facts.check(pools, [r1, r2])
    assert not [f.message for f in findings if re.search(r"\{\w*\}", f.message)], "a placeholder was not filled"
    by = {(f.kind, f.pools): f for f in findings}

    offering = by[("offering", (f"a-{cloud}",))]
    assert (offering.severity, offering.shortfall_gpus) == ("error", 16)  # the 2 nodes in r1-b
    undeclared = [("zone", ("r1-c",), False)] if facts.words.zone_undeclared else []
    assert [(a.kind, a.zones, a.in_spec) for a in offering.alternatives] == [
        ("site", ("r2-a", "r2-b"), True), *undeclared]
    quota = by[("quota", (f"a-{cloud}",))]
    assert (quota.severity, quota.shortfall_gpus) == ("error", 24)  # room for 1 of its 4 nodes
    assert [(a.kind, a.site, a.covers_gpus) for a in quota.alternatives] == [("site", r2.name, 24)]
    assert by[("quota", (f"b-{cloud}",))].severity == "ok"
    reservations = {f.pools[0].split("-")[0]: f.severity for f in findings if f.kind == "reservation"}
    assert reservations == {"gone": "error", "small": "error", "later": "warning", "fits": "ok"}
    assert {f.severity for f in findings if f.kind == "catalog"} == {"ok"}


def test_a_failed_read_is_one_api_error_never_a_pass(sites: Callable[[str], list[SiteSpec]],
                                                     make_pool: Callable[..., PoolPlan]) -> None:
    r1, _ = sites("aws")
    pools = [make_pool("a-aws", "aws", r1.name, "r1", "p5.48xlarge", {"r1-a": 1}),
             make_pool("b-aws", "aws", r1.name, "r1", "p5.48xlarge", {"r1-b": 1})]
    findings = Canned("aws", offered={"r1": throttled()}, room={"r1": throttled()}, totals=True).check(pools, [r1])
    assert not [f for f in findings if f.severity == "ok"]
    # One for the offering read both pools needed; one for the quota read (the total is the same read).
    assert [(f.kind, f.pools, f.details) for f in findings] == [
        ("api_error", ("a-aws", "b-aws"), {"reason": "throttled"}),
        ("api_error", ("a-aws", "b-aws"), {"reason": "throttled"})]
    assert "could not be checked: RuntimeError: Rate exceeded" in findings[0].message


def test_a_reservation_in_another_zone_cannot_carry_the_pool(sites: Callable[[str], list[SiteSpec]],
                                                             make_pool: Callable[..., PoolPlan]) -> None:
    r1, _ = sites("gcp")
    pool = make_pool("a-gcp", "gcp", r1.name, "r1", "a3-highgpu-8g", {"r1-a": 2}, capacity_type="reservation",
                     reservation_id="elsewhere")
    facts = Canned("gcp", offered={}, reservations={
        "elsewhere": Reservation("elsewhere", "a3-highgpu-8g", "r1-b", "READY", True, room=4, total=4)})
    [f] = facts.check_reservations(r1, [pool])
    assert (f.severity, f.shortfall_gpus) == ("error", 16)
    assert "it is in r1-b, the pool is planned in r1-a" in f.message


def test_a_pool_whose_quota_cannot_be_named_is_not_checked(sites: Callable[[str], list[SiteSpec]],
                                                           make_pool: Callable[..., PoolPlan]) -> None:
    r1, _ = sites("aws")
    pool = replace(make_pool("a-aws", "aws", r1.name, "r1", "p5.48xlarge", {"r1-a": 1}),
                   instance_type="unknown.48xlarge")
    [f] = Canned("aws", offered={}).check_quotas([pool], [r1])
    assert (f.kind, f.severity, f.message) == ("quota", "unknown", "no quota is known for it")

"""The judging, once for every cloud: offerings, catalog agreement, quotas and reservations.

Pure: no cloud SDK is imported here. :class:`Judge` is the :class:`CloudChecker` every cloud uses;
a cloud subclasses it with its reads only (:class:`gpufleet.preflight.reads.Reads`, in
``gpufleet/clouds/<cloud>/preflight.py``) and its words (:class:`gpufleet.preflight.wording.Wording`).
The judge decides:

* **offering**: a pool's zones that do not offer its type are a shortfall of the nodes planned
  there; alternatives are the site's other zones, types with the same GPU, and other sites;
* **catalog**: the provider's GPU count, model and memory, fabric interfaces and vCPUs against the
  catalog row the plan was sized with (a mismatch is an error: the sizing used the catalog);
* **quota**: the on-demand pools drawing on a quota in one scope need ``units per node x nodes``;
  more than is free is a shortfall of the GPUs that do not fit in whole nodes; alternatives are
  other sites (after their own pools) and same-GPU types under another quota;
* **reservation**: the reservation exists, is ready, reserves the pool's type in its zone and has
  room for its nodes, and a reservation made in a compact placement (an AWS cluster placement group)
  is the one the pool launches into; alternatives are other reservations and launching on demand.

A read that fails is never a pass: its :class:`ProviderError` becomes an ``api_error`` finding (one
for the pools a failed read leaves unchecked, not one per check that needed it), and the checks
that depend on it are left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from gpufleet import clouds
from gpufleet.catalog import InstanceType
from gpufleet.plan import PoolPlan
from gpufleet.preflight.base import (
    Alternative,
    CloudChecker,
    Finding,
    PreflightOptions,
    api_error,
    fmt_int,
    nodes_in,
    rank_alternatives,
    unfit_gpus,
)
from gpufleet.preflight.reads import (
    InstanceFacts,
    Offering,
    ProviderError,
    Quota,
    Reads,
    Reservation,
    ReservationRef,
    Unit,
    UnknownQuota,
)
from gpufleet.preflight.wording import Wording, load_wording
from gpufleet.spec import SiteSpec

GIB_TOLERANCE = 0.011
"""The catalog rounds GiB to two decimals."""

UNIT_WORDS = {"vcpus": "vCPUs", "gpus": "GPUs"}


def catalog_mismatches(row: InstanceType, facts: InstanceFacts, words: Wording) -> list[str]:
    """Where the provider's facts disagree with the catalog row (empty: they agree). A figure the
    provider does not give is not compared."""
    problems: list[str] = []
    said = words.provider
    if facts.gpus is not None and facts.gpus != row.gpus:
        problems.append(f"GPUs per {words.machine}: {said} {facts.gpus}, catalog {row.gpus}")
    if facts.gpu_model and row.gpu.split("-")[0].upper() != facts.gpu_model.upper():
        problems.append(f"GPU model: {said} {facts.gpu_model}, catalog {row.gpu}")
    mib = facts.gpu_memory_mib
    if mib is not None and abs(mib / 1024 - row.gpu_memory_gib) > GIB_TOLERANCE:
        problems.append(f"GPU memory: {said} {mib / 1024:.2f} GiB ({mib} MiB), catalog {row.gpu_memory_gib:.2f} GiB")
    if facts.fabric_interfaces is not None:
        expected = row.fabric_interfaces if row.fabric == facts.fabric else 0
        if facts.fabric_interfaces != expected:
            problems.append(f"{facts.fabric.upper()} interfaces: {said} {facts.fabric_interfaces}, catalog {expected}")
    if facts.vcpus is not None and facts.vcpus != row.vcpus:
        problems.append(f"vCPUs: {said} {facts.vcpus}, catalog {row.vcpus}")
    return problems


class Judge(CloudChecker, Reads):
    """Checks a cloud's pools from the facts its reads return (see the module docstring).

    A cloud's checker subclasses this with its reads, ``cloud`` and ``sdk``; its words (and the name
    of its credential source) are the ``preflight.yaml`` of the package its class is defined in
    (``gpufleet.clouds.<cloud>``).
    """

    quota_unit: ClassVar[Unit] = "vcpus"

    def __init__(self, options: PreflightOptions | None = None) -> None:
        CloudChecker.__init__(self, options)
        Reads.__init__(self)
        self.words = self.wording()
        self.credential_source = self.words.credentials_check
        self.sdk_loggers = self.sdk.loggers
        self.reservation_types = clouds.profile(self.cloud).capacity_types - {"on_demand"}
        """Capacity types of pools that launch into a named reservation (the profile's, but on-demand)."""
        self._planned: dict[tuple[str, str], float] = {}
        """(quota scope, quota key) -> units the plan's on-demand pools need there (set by ``check_quotas``)."""

    @classmethod
    def wording(cls) -> Wording:
        """This cloud's words: ``preflight.yaml`` beside the module that defines the class."""
        return load_wording(cls.__module__.rpartition(".")[0])

    def _same_gpu(self, pool: PoolPlan) -> list[InstanceType]:
        rows = self.catalog.instances_with_gpu(pool.gpu, self.cloud)
        return [r for r in rows if r.instance_type != pool.instance_type]

    def _offering(self, site: SiteSpec, instance_type: str, zones: Sequence[str]) -> Offering:
        return self.offerings(site, [instance_type], zones)[instance_type]

    def _units(self, instance_type: str) -> float:
        """Quota units (vCPUs or GPUs) one node of ``instance_type`` takes."""
        row = self.catalog.instance(instance_type)
        return float(row.gpus if self.quota_unit == "gpus" else row.vcpus)

    # --- offerings -------------------------------------------------------------------------------------

    def check_offerings(self, site: SiteSpec, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Is each pool's instance type offered (and not refused) in each of its zones?"""
        findings: list[Finding] = []
        failed: dict[tuple[ProviderError, str], list[PoolPlan]] = {}  # pools whose read failed alike share a finding
        for pool in pools:
            offering = self.attempt(lambda: self._offering(site, pool.instance_type, pool.zones))
            if isinstance(offering, ProviderError):
                what = self.words.offering_failed.format(itype=pool.instance_type, region=site.region)
                failed.setdefault((offering, what), []).append(pool)
            else:
                findings.append(self._judge_offering(site, pool, offering, sites))
        for (err, what), group in failed.items():
            findings.append(api_error(self.cloud, site.name, group, self.words.offering_check, err, what))
        return findings

    def _judge_offering(self, site: SiteSpec, pool: PoolPlan, offering: Offering, sites: Sequence[SiteSpec]) -> Finding:
        w = self.words
        check = w.offering_check
        missing = [z for z in pool.zones if z not in offering.zones]
        if not missing:
            return Finding(self.cloud, "offering", "ok", site.name, (pool.name,), check,
                           w.offered.format(itype=pool.instance_type, zones=", ".join(pool.zones), region=site.region))
        nodes = nodes_in(pool, missing)
        short = nodes * pool.gpus_per_node
        anywhere = w.unoffered_anywhere or w.unoffered
        if not offering.listed and w.unlisted:
            head = w.unlisted
        elif offering.refused and w.refused:
            head = w.refused
        else:
            head = w.unoffered if offering.zones else anywhere
        restricted = sorted(set(missing) & offering.restricted_zones)
        message = head.format(
            itype=pool.instance_type, region=site.region, missing=", ".join(missing), reason=offering.refused,
            offered=", ".join(sorted(offering.zones)),
            restricted=w.restricted.format(zones=", ".join(restricted)) if restricted and w.restricted else "",
        ) + f"{nodes} nodes ({short} GPUs) are planned there"
        details: dict[str, Any] = {"region": site.region, "zones_not_offered": missing}
        if offering.lists_region:
            details["zones_offered"] = sorted(offering.zones)
        return Finding(self.cloud, "offering", "error", site.name, (pool.name,), check, message, shortfall_gpus=short,
                       alternatives=self._offering_alternatives(site, pool, missing, offering, sites, short),
                       details=details)

    def _offering_alternatives(self, site: SiteSpec, pool: PoolPlan, missing: list[str], offering: Offering,
                               sites: Sequence[SiteSpec], short: int) -> tuple[Alternative, ...]:
        w = self.words
        itype = pool.instance_type
        alts: list[Alternative] = []
        others = [z for z in site.zones if z not in pool.zones]
        declared = self.quietly(lambda: self._offering(site, itype, others), None) if others else None
        for zone in others:
            if declared is not None and zone in declared.zones:
                alts.append(Alternative("zone", site.name, site.region, (zone,), itype, None, True,
                                        w.zone_declared.format(site=site.name, itype=itype, zone=zone)))
        if offering.lists_region and w.zone_undeclared:
            for zone in sorted(offering.zones - set(site.zones)):
                alts.append(Alternative("zone", site.name, site.region, (zone,), itype, None, False,
                                        w.zone_undeclared.format(site=site.name, itype=itype, zone=zone)))
        same = self._same_gpu(pool)
        there: dict[str, Offering] = {}
        if same:
            there = self.quietly(lambda: self.offerings(site, [r.instance_type for r in same], missing), {})
        for row in same:
            other = there.get(row.instance_type)
            if other is not None and all(z in other.zones for z in missing):
                allowed = row.instance_type in pool.fallback_instance_types
                note = w.same_gpu.format(gpu=pool.gpu, nodes=math.ceil(short / row.gpus), itype=row.instance_type,
                                         gpus=row.gpus, short=short)
                note += "" if allowed else "; add it to the workload's instance_types"
                alts.append(Alternative("instance_type", site.name, site.region, tuple(missing), row.instance_type,
                                        None, allowed, note))
        for other_site in sites:
            if other_site.name == site.name:
                continue
            elsewhere = self.quietly(lambda: self._offering(other_site, itype, other_site.zones), None)
            zones = tuple(z for z in other_site.zones if elsewhere is not None and z in elsewhere.zones)
            if zones:
                note = w.site_offers.format(itype=itype, zones=", ".join(zones), region=other_site.region)
                alts.append(Alternative("site", other_site.name, other_site.region, zones, itype, None, True, note))
        return rank_alternatives(alts, short)

    # --- catalog ---------------------------------------------------------------------------------------

    def check_site_catalog(self, site: SiteSpec, mine: Sequence[PoolPlan], pools: Sequence[PoolPlan],
                           described: set[str]) -> list[Finding]:
        """Compare the site's types the provider lists (and no other site compared) with the catalog."""
        zones_of: dict[str, list[str]] = {}
        for pool in mine:
            zones = zones_of.setdefault(pool.instance_type, [])
            zones += [z for z in pool.zones if z not in zones]

        def listed(itype: str) -> bool:
            offering = self.quietly(lambda: self._offering(site, itype, zones_of[itype]), None)
            return offering is not None and offering.listed

        types = [t for t in sorted(set(zones_of) - described) if listed(t)]
        if not types:
            return []
        described.update(types)
        return self.judge_catalog(site.region, types, site=site.name,
                                  pools=[p for p in pools if p.instance_type in types],
                                  read=lambda: self.instance_facts(site, {t: zones_of[t] for t in types}))

    def judge_catalog(self, region: str, instance_types: Sequence[str], *, site: str, pools: Sequence[PoolPlan],
                      read: Callable[[], Mapping[str, InstanceFacts]]) -> list[Finding]:
        """The provider's facts (``read()``) for ``instance_types`` against their catalog rows.

        Each finding is about every pool of ``pools`` using the type, at their sites (or ``site``).
        """
        w = self.words
        check = w.catalog_check
        names_for = {t: tuple(p.name for p in pools if p.instance_type == t) for t in instance_types}
        sites_for = {t: ",".join(sorted({p.site for p in pools if p.instance_type == t})) or site
                     for t in instance_types}
        described = self.attempt(read)
        if isinstance(described, ProviderError):
            return [api_error(self.cloud, site, [n for t in instance_types for n in names_for[t]], check, described,
                              f"catalog agreement of {', '.join(instance_types)}")]
        findings: list[Finding] = []
        for itype in instance_types:
            row = self.catalog.instance(itype)
            facts = described.get(itype)
            if facts is None:
                findings.append(Finding(self.cloud, "catalog", "error", sites_for[itype], names_for[itype], check,
                                        f"{w.provider} does not describe {itype} in {region}; the catalog row cannot "
                                        "be confirmed"))
                continue
            problems = catalog_mismatches(row, facts, w)
            if problems:
                findings.append(Finding(self.cloud, "catalog", "error", sites_for[itype], names_for[itype], check,
                                        w.catalog_disagrees.format(provider=w.provider, itype=itype,
                                                                   problems="; ".join(problems)),
                                        details={"instance_type": itype, "mismatches": problems}))
                continue
            agrees = w.catalog_agrees.format(
                itype=itype, gpus=row.gpus, gpu=row.gpu, gib=row.gpu_memory_gib, vcpus=row.vcpus,
                interfaces=row.fabric_interfaces if row.fabric == facts.fabric else 0,
                accelerators=", ".join(sorted(set(facts.accelerators))) or "no accelerator")
            findings.append(Finding(self.cloud, "catalog", "ok", sites_for[itype], names_for[itype], check, agrees))
        return findings

    # --- quotas ----------------------------------------------------------------------------------------

    def check_quotas(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Each quota's room in each scope against the on-demand pools drawing on it.

        Pools that launch into a reservation are left out: a reservation holds its quota already.
        """
        check = self.words.quota_check
        by_site = {s.name: s for s in sites}
        findings: list[Finding] = []
        groups: dict[tuple[str, str], list[PoolPlan]] = {}
        quotas: dict[tuple[str, str], Quota] = {}
        where: dict[str, SiteSpec] = {}
        for pool in pools:
            if pool.capacity_type != "on_demand":
                continue
            site = by_site[pool.site]
            none: tuple[Quota, ...] | UnknownQuota = ()  # a failed read: the offering check reports it
            drawn = self.quietly(lambda: self.quotas_of(site, pool), none)
            if isinstance(drawn, UnknownQuota):
                findings.append(Finding(self.cloud, "quota", "unknown", pool.site, (pool.name,), check, drawn.why))
                continue
            scope = self.quota_scope(site)
            where.setdefault(scope, site)
            for quota in drawn:
                groups.setdefault((scope, quota.key), []).append(pool)
                quotas[(scope, quota.key)] = quota
        # Totals come last and list their pools quota by quota: a total's failed read is reported
        # with the first quota that shares it.
        order = sorted(groups, key=lambda k: (quotas[k].total, k))
        first = {p.name: i for i, k in reversed(list(enumerate(order))) for p in groups[k]}
        for key in order:
            if quotas[key].total:
                groups[key].sort(key=lambda p: first[p.name])
        needed = {k: sum(self._units(p.instance_type) * p.nodes for p in g) for k, g in groups.items()}
        self._planned.update(needed)
        reported: dict[ProviderError, set[str]] = {}
        for key in order:
            scope = key[0]
            found = self._judge_quota(where[scope], scope, quotas[key], groups[key], needed, sites, reported)
            findings += [found] if found else []
        return findings

    def _judge_quota(self, site: SiteSpec, scope: str, quota: Quota, group: list[PoolPlan],
                     needed: dict[tuple[str, str], float], sites: Sequence[SiteSpec],
                     reported: dict[ProviderError, set[str]]) -> Finding | None:
        w = self.words
        check = w.quota_check
        unit = self.quota_unit
        site_names = ",".join(sorted({p.site for p in group}))
        names = tuple(p.name for p in group)
        room = self.attempt(lambda: self.quota_room(site, quota))
        if isinstance(room, ProviderError):
            if set(names) <= reported.get(room, set()):
                return None  # the same failed read, already reported for these pools
            reported.setdefault(room, set()).update(names)
            return api_error(self.cloud, site_names, group, check, room,
                             w.quota_failed.format(name=quota.name, key=quota.key, region=site.region))
        if room is None:
            return Finding(self.cloud, "quota", "unknown", site_names, names, check,
                           w.quota_unlisted.format(name=quota.name, key=quota.key, region=site.region))
        need = needed[(scope, quota.key)]
        free = room.free
        details: dict[str, Any] = {"region": site.region, w.quota_key_field: quota.key, f"needed_{unit}": need,
                                   f"limit_{unit}": room.limit}
        if room.used is not None and w.quota_used_field:
            details[f"{w.quota_used_field}_{unit}"] = room.used
            details[f"free_{unit}"] = free
        words = {"name": quota.name, "key": quota.key, "region": site.region, "unit": UNIT_WORDS[unit],
                 "need": fmt_int(need), "limit": fmt_int(room.limit), "free": fmt_int(free),
                 "used": fmt_int(room.used or 0.0)}
        if need <= free:
            return Finding(self.cloud, "quota", "ok", site_names, names, check, w.quota_ok.format(**words),
                           details=details)
        short = unfit_gpus(group, lambda p: self._units(p.instance_type), free)
        parts = ", ".join(f"{p.nodes} x {p.instance_type} = {fmt_int(self._units(p.instance_type) * p.nodes)} "
                          f"{UNIT_WORDS[unit]}" for p in group)
        message = w.quota_short.format(**words, parts=parts, short_units=fmt_int(need - free), short=short,
                                       target=fmt_int((room.used or 0.0) + need))
        alternatives = () if quota.total else self._quota_alternatives(site, scope, quota, group, needed, sites, short)
        return Finding(self.cloud, "quota", "error", site_names, names, check, message, shortfall_gpus=short,
                       alternatives=alternatives, details=details)

    def _quota_alternatives(self, site: SiteSpec, scope: str, quota: Quota, group: Sequence[PoolPlan],
                            needed: dict[tuple[str, str], float], sites: Sequence[SiteSpec],
                            short: int) -> tuple[Alternative, ...]:
        w = self.words
        unit = UNIT_WORDS[self.quota_unit]
        pool = max(group, key=lambda p: p.gpus)
        itype = pool.instance_type
        per_node = self._units(itype)
        alts: list[Alternative] = []
        for other in sites:
            other_scope = self.quota_scope(other)
            if other_scope == scope:
                continue
            there = self.quietly(lambda: self._offering(other, itype, other.zones), None)
            room = self.quietly(lambda: self.quota_room(other, quota), None) if there is not None else None
            if there is None or room is None:
                continue
            free = room.free - needed.get((other_scope, quota.key), 0.0)
            nodes = math.floor(free / per_node) if per_node else 0
            zones = tuple(z for z in other.zones if z in there.zones)
            if zones and nodes > 0:
                alts.append(Alternative("site", other.name, other.region, zones, itype,
                                        min(short, nodes * pool.gpus_per_node), True, w.quota_site_room.format(
                                            room=fmt_int(free), unit=unit, key=quota.key, region=other.region,
                                            nodes=nodes, itype=itype, gpus=nodes * pool.gpus_per_node)))
        for row in self._same_gpu(pool):
            other_quota = self.quota_named(row.instance_type)
            if other_quota is None or other_quota.key == quota.key or not w.quota_same_gpu:
                continue
            room = self.quietly(lambda: self.quota_room(site, other_quota), None)
            there = self.quietly(lambda: self._offering(site, row.instance_type, pool.zones), None)
            if room is None or there is None:
                continue
            nodes = math.floor((room.free - needed.get((scope, other_quota.key), 0.0)) / self._units(row.instance_type))
            zones = tuple(z for z in pool.zones if z in there.zones)
            if zones and nodes > 0:
                alts.append(Alternative("instance_type", pool.site, site.region, zones, row.instance_type,
                                        min(short, nodes * row.gpus), row.instance_type in pool.fallback_instance_types,
                                        w.quota_same_gpu.format(gpu=pool.gpu, key=other_quota.key, nodes=nodes,
                                                                itype=row.instance_type)))
        return rank_alternatives(alts, short)

    # --- reservations ----------------------------------------------------------------------------------

    def check_reservations(self, site: SiteSpec, pools: Sequence[PoolPlan]) -> list[Finding]:
        """The reservation each reserved pool names: exists, ready, its type and zone, room for its nodes."""
        w = self.words
        check = w.reservation_check
        findings: list[Finding] = []
        for pool in pools:
            if pool.capacity_type not in self.reservation_types or not pool.reservation_id:
                continue
            ref = self.reservation_ref(site, pool)
            found = self.attempt(lambda: self.reservation(site, pool, ref))
            if isinstance(found, ProviderError):
                findings.append(api_error(self.cloud, site.name, [pool], check, found, ref.what))
            elif found is None:
                findings.append(Finding(
                    self.cloud, "reservation", "error", site.name, (pool.name,), check,
                    f"{w.reservation_noun} {ref.name} does not exist {ref.searched}; {pool.nodes} x "
                    f"{pool.instance_type} ({pool.gpus} GPUs) count on it", shortfall_gpus=pool.gpus,
                    alternatives=self._reservation_alternatives(site, pool, pool.gpus, ref),
                    details={"reservation_id": ref.id, **ref.details}))
            else:
                findings.append(self._judge_reservation(site, pool, ref, found))
        return findings

    def _judge_reservation(self, site: SiteSpec, pool: PoolPlan, ref: ReservationRef, found: Reservation) -> Finding:
        w = self.words
        problems: list[str] = []
        warnings: list[str] = []
        if found.scheduled:
            warnings.append(f"it is scheduled, not yet active (starts {found.starts})" if found.starts
                            else "it is scheduled, not yet active")
        elif not found.ready:
            problems.append(w.reservation_not_ready.format(state=found.state))
        if found.instance_type != pool.instance_type:
            problems.append(f"it reserves {found.instance_type}, the pool uses {pool.instance_type}")
        if found.zone is not None and found.zone not in pool.zones:
            problems.append(f"it is in {found.zone}, the pool is planned in {', '.join(pool.zones)}")
        self._judge_placement(pool, found, problems, warnings)
        usable = 0 if problems else found.room
        if usable < pool.nodes:
            problems.append(w.reservation_room.format(room=found.room, total=found.total, nodes=pool.nodes))
        details = {"reservation_id": ref.id, **found.details}
        words = {"name": ref.name, "zone": found.zone, "zones": ", ".join(pool.zones), "room": found.room,
                 "total": found.total, "itype": found.instance_type, "nodes": pool.nodes, "pool": pool.name}
        check = w.reservation_check
        if problems:
            short = max(0, pool.nodes - usable) * pool.gpus_per_node
            return Finding(self.cloud, "reservation", "error", site.name, (pool.name,), check,
                           w.reservation_short.format(**words, problems="; ".join(problems + warnings), short=short),
                           shortfall_gpus=short, details=details,
                           alternatives=self._reservation_alternatives(site, pool, short, ref))
        if warnings:
            return Finding(self.cloud, "reservation", "warning", site.name, (pool.name,), check,
                           w.reservation_scheduled.format(**words, warnings="; ".join(warnings)), details=details)
        return Finding(self.cloud, "reservation", "ok", site.name, (pool.name,), check,
                       w.reservation_ok.format(**words), details=details)

    def _judge_placement(self, pool: PoolPlan, found: Reservation, problems: list[str], warnings: list[str]) -> None:
        """A reservation made in a placement serves only instances in it: the pool must launch into that
        one (a problem otherwise); one made outside any placement serves the pool wherever it launches,
        but holds nothing inside a placement the pool names as the reservation's (a warning)."""
        w = self.words
        into = pool.placement_group_name if pool.placement_group else None
        if found.placement is not None and found.placement != into and w.reservation_placement:
            where = (f"placement group {into}" if into else "a new placement group" if pool.placement_group
                     else "no placement group")
            problems.append(w.reservation_placement.format(group=found.placement, into=where))
        elif found.placement is None and into is not None and w.reservation_no_placement:
            warnings.append(w.reservation_no_placement.format(into=into))

    def _reservation_alternatives(self, site: SiteSpec, pool: PoolPlan, short: int,
                                  ref: ReservationRef) -> tuple[Alternative, ...]:
        itype = pool.instance_type
        alts: list[Alternative] = []
        none: Sequence[Reservation] = ()
        for other in self.quietly(lambda: self.other_reservations(site, pool), none):
            if other.id == ref.id or other.room <= 0 or other.instance_type != itype:
                continue
            zone = other.zone or ""
            extra = "" if zone in pool.zones else f" and zone: {zone}"
            alts.append(Alternative("reservation", site.name, site.region, (zone,), itype,
                                    min(short, other.room * pool.gpus_per_node), False,
                                    f"{other.id} in {zone}: {other.room} of {other.total} x {itype} available; "
                                    f"set reservation_id: {other.id}{extra}"))
        need = self._units(itype) * pool.nodes
        unit = UNIT_WORDS[self.quota_unit]
        cover: int | None = None
        quota_words = ""
        quota = self.quota_named(itype)
        if quota is not None:
            quota_words = f"; needs {fmt_int(need)} {unit} of {quota.key} {quota.name}"
            room = self.quietly(lambda: self.quota_room(site, quota), None)
            if room is not None:
                free = room.free - self._planned.get((self.quota_scope(site), quota.key), 0.0)
                cover = min(short, max(0, math.floor(free / self._units(itype))) * pool.gpus_per_node)
                quota_words += f", {fmt_int(max(free, 0))} are left after the on-demand pools"
        if cover != 0:
            alts.append(Alternative("on_demand", site.name, site.region, pool.zones, itype, cover, False,
                                    self.words.on_demand.format(zones=", ".join(pool.zones), quota=quota_words,
                                                                need=fmt_int(need), unit=unit)))
        return rank_alternatives(alts, short)

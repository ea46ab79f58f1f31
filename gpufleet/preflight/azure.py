"""Azure preflight through azure-mgmt-compute: resource SKUs, family vCPU quotas, capacity reservations.

Calls, per subscription and region the plan uses (retried by azure-core's RetryPolicy on 408, 429
and 5xx, honouring ``Retry-After``):

* ``resource_skus.list(filter="location eq '<region>'")`` (GET ``.../providers/Microsoft.Compute/skus``):
  the size exists in the region, is not restricted for the subscription (restrictions of type
  ``Location``), and is offered and unrestricted (type ``Zone``) in each planned zone; its
  ``vCPUs`` and ``GPUs`` capabilities against the catalog; its ``family`` names the quota;
* ``usage.list(location)`` (GET ``.../locations/<region>/usages``): ``limit - currentValue`` of the
  family (``standardNDSH100v5Family``…) and of ``cores`` (total regional vCPUs) against the vCPUs
  of the on-demand pools;
* ``capacity_reservations.list_by_capacity_reservation_group``: the capacity reservation group a
  pool counts on exists and reserves enough of its size in its zones.

Credentials: ``DefaultAzureCredential`` without the sources that can hang or prompt (managed
identity unless ``AZURE_CLIENT_ID`` / ``IDENTITY_ENDPOINT`` / ``MSI_ENDPOINT`` say it exists, VS
Code, the shared token cache, the browser), probed once for an ARM token. The subscription is the
site's ``subscription_id`` or ``AZURE_SUBSCRIPTION_ID``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    not_checked,
    rank_alternatives,
    register,
    unfit_gpus,
)
from gpufleet.spec import SiteSpec

ARM_SCOPE = "https://management.azure.com/.default"
TOTAL_CORES = "cores"
"""``usage.list`` name of the "Total Regional vCPUs" quota."""

ClientFactory = Callable[[Any, str], Any]
"""``(credential, subscription_id) -> ComputeManagementClient``."""

_GROUP_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute/"
    r"capacityReservationGroups/(?P<name>[^/]+)$", re.IGNORECASE)


@dataclass
class SkuFacts:
    """What ``resource_skus.list`` says about one VM size in one region."""

    name: str
    family: str
    zones: set[str] = field(default_factory=set)  # offered and not restricted
    restricted_zones: set[str] = field(default_factory=set)
    location_restriction: str | None = None  # reason code, when the whole region is restricted
    vcpus: int | None = None
    gpus: int | None = None


def _text(value: Any) -> str:
    """An SDK enum or string as its plain value (``ResourceSkuRestrictionsType.ZONE`` -> ``Zone``)."""
    return str(getattr(value, "value", value) or "")


def _restriction_values(restriction: Any) -> list[Any]:
    """The restriction's ``values`` (``values_property`` in azure-mgmt-compute 35+, where the model
    is a mapping and ``values`` is the mapping method)."""
    values = getattr(restriction, "values_property", None)
    if values is None:
        values = getattr(restriction, "values", None)
        if callable(values):
            values = None
    return list(values or [])


def sku_facts(sku: Any, region: str) -> SkuFacts:
    """Boil one ``ResourceSku`` down to the facts preflight needs for ``region``."""
    facts = SkuFacts(name=str(sku.name), family=str(sku.family or ""))
    for info in sku.location_info or []:
        if str(info.location or "").lower() == region.lower():
            facts.zones |= {str(z) for z in (info.zones or [])}
    for r in sku.restrictions or []:
        kind = _text(r.type)
        reason = _text(r.reason_code) or "restricted"
        info = r.restriction_info
        if kind == "Location" and region.lower() in {str(v).lower() for v in _restriction_values(r)}:
            facts.location_restriction = reason
        elif kind == "Zone" and info is not None:
            if region.lower() in {str(loc).lower() for loc in (info.locations or [])}:
                facts.restricted_zones |= {str(z) for z in (info.zones or [])}
    facts.zones -= facts.restricted_zones
    caps = {str(c.name): str(c.value) for c in (sku.capabilities or [])}
    if caps.get("vCPUs", "").isdigit():
        facts.vcpus = int(caps["vCPUs"])
    if caps.get("GPUs", "").isdigit():
        facts.gpus = int(caps["GPUs"])
    return facts


def detect_credential() -> tuple[Any, str | None]:
    """``(credential, None)`` when one works, else ``(None, why)``. Never waits on IMDS by default."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import DefaultAzureCredential

    managed = any(os.environ.get(v) for v in ("AZURE_CLIENT_ID", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"))
    credential = DefaultAzureCredential(
        exclude_managed_identity_credential=not managed,
        exclude_visual_studio_code_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_interactive_browser_credential=True,
        process_timeout=10,
    )
    try:
        credential.get_token(ARM_SCOPE)
    except ClientAuthenticationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, ("no Azure credentials found (environment, workload identity, Azure CLI, Azure Developer "
                      f"CLI, PowerShell{', managed identity' if managed else ''}): {first}")
    return credential, None


@register
class AzureChecker(CloudChecker):
    """Checks Azure pools with azure-mgmt-compute (see the module docstring for the calls)."""

    cloud = "azure"
    credential_source = "azure-identity DefaultAzureCredential"

    def __init__(self, options: PreflightOptions | None = None, *, credential: Any = None,
                 client_factory: ClientFactory | None = None) -> None:
        super().__init__(options)
        self.credential = credential
        self._factory: ClientFactory = client_factory or self.make_client
        self._clients: dict[str, Any] = {}
        self._skus: dict[tuple[str, str], dict[str, SkuFacts] | BaseException] = {}
        self._usage: dict[tuple[str, str], dict[str, tuple[float, float]] | BaseException] = {}

    def make_client(self, credential: Any, subscription_id: str) -> Any:
        """A ComputeManagementClient with the options' retries and timeouts."""
        from azure.mgmt.compute import ComputeManagementClient

        o = self.options
        return ComputeManagementClient(credential, subscription_id, retry_total=max(o.max_attempts - 1, 0),
                                       retry_backoff_factor=o.backoff_initial_s, retry_backoff_max=o.backoff_max_s,
                                       connection_timeout=o.timeout_s, read_timeout=o.timeout_s)

    def _client(self, subscription: str) -> Any:
        if subscription not in self._clients:
            self._clients[subscription] = self._factory(self.credential, subscription)
        return self._clients[subscription]

    @staticmethod
    def subscription_of(site: SiteSpec) -> str | None:
        return site.subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID") or None

    # --- the seam ------------------------------------------------------------------------------------

    def credentials_problem(self) -> str | None:
        if self.credential is None:
            self.credential, problem = detect_credential()
            return problem
        return None

    def site_unusable(self, site: SiteSpec) -> tuple[str, str] | None:
        if self.subscription_of(site) is None:
            return "subscription", f"site {site.name} has no subscription_id and AZURE_SUBSCRIPTION_ID is unset"
        return None

    def check_site_catalog(self, site: SiteSpec, mine: Sequence[PoolPlan], pools: Sequence[PoolPlan],
                           described: set[str]) -> list[Finding]:
        types = sorted({p.instance_type for p in mine} - described)
        described.update(types)
        return self.check_catalog(site, types, [p for p in pools if p.instance_type in types])

    # --- SKUs and offerings ----------------------------------------------------------------------------

    def skus(self, site: SiteSpec) -> dict[str, SkuFacts]:
        """VM sizes of the site's region, as ``resource_skus.list`` reports them for the subscription.

        A failure is remembered and raised again: one failed region is asked once, not per check.
        """
        sub = self.subscription_of(site) or ""
        key = (sub, site.region.lower())
        if key not in self._skus:
            try:
                found: dict[str, SkuFacts] = {}
                for sku in self._client(sub).resource_skus.list(filter=f"location eq '{site.region}'"):
                    if str(sku.resource_type or "") == "virtualMachines":
                        found[str(sku.name)] = sku_facts(sku, site.region)
                self._skus[key] = found
            except _errors() as exc:
                self._skus[key] = exc
        value = self._skus[key]
        if isinstance(value, BaseException):
            raise value
        return value

    def _same_gpu(self, pool: PoolPlan) -> list[InstanceType]:
        return [r for r in self.catalog.instances_with_gpu(pool.gpu, self.cloud) if r.instance_type != pool.instance_type]

    def check_offerings(self, site: SiteSpec, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Is each pool's size offered, and unrestricted, in the region and in each of its zones?"""
        check = "compute:resource_skus.list"
        try:
            skus = self.skus(site)
        except _errors() as exc:
            return [api_error(self.cloud, site.name, pools, check, exc, f"the VM sizes of {site.region}")]
        findings: list[Finding] = []
        for pool in pools:
            sku = skus.get(pool.instance_type)
            if sku is None or sku.location_restriction:
                why = ("is not offered in" if sku is None
                       else f"is restricted for this subscription ({sku.location_restriction}) in")
                missing = list(pool.zones)
            else:
                missing = [z for z in pool.zones if z not in sku.zones]
                why = ""
            if not missing:
                findings.append(Finding(self.cloud, "offering", "ok", site.name, (pool.name,), check,
                                        f"{pool.instance_type} is offered in zones {', '.join(pool.zones)} of "
                                        f"{site.region}"))
                continue
            nodes = nodes_in(pool, missing)
            short = nodes * pool.gpus_per_node
            if why:
                message = f"{pool.instance_type} {why} {site.region}; {nodes} nodes ({short} GPUs) are planned there"
            else:
                assert sku is not None
                restricted = sorted(set(missing) & sku.restricted_zones)
                offered = f"offered in zones {', '.join(sorted(sku.zones))}" if sku.zones else "offered in no zone"
                extra = f" (restricted for this subscription in {', '.join(restricted)})" if restricted else ""
                message = (f"{pool.instance_type} is not available in zones {', '.join(missing)} of {site.region}"
                           f"{extra}; it is {offered}. {nodes} nodes ({short} GPUs) are planned there")
            findings.append(Finding(self.cloud, "offering", "error", site.name, (pool.name,), check, message,
                                    shortfall_gpus=short,
                                    alternatives=self._offering_alternatives(site, pool, missing, sites, short),
                                    details={"region": site.region, "zones_not_offered": missing}))
        return findings

    def _offering_alternatives(self, site: SiteSpec, pool: PoolPlan, missing: list[str], sites: Sequence[SiteSpec],
                               short: int) -> tuple[Alternative, ...]:
        itype = pool.instance_type
        alts: list[Alternative] = []
        skus = self.skus(site)
        sku = skus.get(itype)
        if sku is not None and not sku.location_restriction:
            for zone in site.zones:
                if zone not in pool.zones and zone in sku.zones:
                    alts.append(Alternative("zone", site.name, site.region, (zone,), itype, None, True,
                                            f"zone {zone} of {site.name} offers {itype}"))
            for zone in sorted(sku.zones - set(site.zones)):
                alts.append(Alternative("zone", site.name, site.region, (zone,), itype, None, False,
                                        f"zone {zone} offers {itype} but {site.name} does not declare it: add it "
                                        "to the site's zones"))
        for row in self._same_gpu(pool):
            other = skus.get(row.instance_type)
            if other is not None and not other.location_restriction and all(z in other.zones for z in missing):
                allowed = row.instance_type in pool.fallback_instance_types
                alts.append(Alternative(
                    "instance_type", site.name, site.region, tuple(missing), row.instance_type, None, allowed,
                    f"same GPU ({pool.gpu}): {math.ceil(short / row.gpus)} x {row.instance_type}"
                    + ("" if allowed else "; add it to the workload's instance_types")))
        for other_site in sites:
            if other_site.name == site.name:
                continue
            try:
                there = self.skus(other_site).get(itype)
            except _errors():
                continue
            if there is None or there.location_restriction:
                continue
            zones = tuple(z for z in other_site.zones if z in there.zones)
            if zones:
                alts.append(Alternative("site", other_site.name, other_site.region, zones, itype, None, True,
                                        f"{itype} is offered in zones {', '.join(zones)} of {other_site.region}"))
        return rank_alternatives(alts, short)

    def check_catalog(self, site: SiteSpec, types: Sequence[str], pools: Sequence[PoolPlan]) -> list[Finding]:
        """The SKU's ``vCPUs`` and ``GPUs`` capabilities against the catalog rows."""
        check = "compute:resource_skus.list"
        try:
            skus = self.skus(site)
        except _errors():
            return []  # reported by the offering check
        findings: list[Finding] = []
        for itype in types:
            sku = skus.get(itype)
            if sku is None:
                continue  # reported by the offering check
            row = self.catalog.instance(itype)
            names = tuple(p.name for p in pools if p.instance_type == itype)
            where = ",".join(sorted({p.site for p in pools if p.instance_type == itype})) or site.name
            problems = []
            if sku.gpus is not None and sku.gpus != row.gpus:
                problems.append(f"GPUs per VM: Azure {sku.gpus}, catalog {row.gpus}")
            if sku.vcpus is not None and sku.vcpus != row.vcpus:
                problems.append(f"vCPUs: Azure {sku.vcpus}, catalog {row.vcpus}")
            if problems:
                findings.append(Finding(self.cloud, "catalog", "error", where, names, check,
                                        f"the catalog disagrees with Azure for {itype}: {'; '.join(problems)}",
                                        details={"instance_type": itype, "mismatches": problems}))
            else:
                findings.append(Finding(self.cloud, "catalog", "ok", where, names, check,
                                        f"{itype}: {sku.gpus if sku.gpus is not None else row.gpus} GPUs, "
                                        f"{sku.vcpus if sku.vcpus is not None else row.vcpus} vCPUs, as in the catalog"))
        return findings

    # --- quotas --------------------------------------------------------------------------------------

    def usage(self, site: SiteSpec) -> dict[str, tuple[float, float]]:
        """``usage.list``: quota name (lower case) -> (current vCPUs, limit vCPUs). Failures are remembered."""
        sub = self.subscription_of(site) or ""
        key = (sub, site.region.lower())
        if key not in self._usage:
            try:
                self._usage[key] = {
                    str(u.name.value).lower(): (float(u.current_value), float(u.limit))
                    for u in self._client(sub).usage.list(site.region)
                }
            except _errors() as exc:
                self._usage[key] = exc
        value = self._usage[key]
        if isinstance(value, BaseException):
            raise value
        return value

    def _vcpus(self, pool: PoolPlan) -> float:
        return float(self.catalog.instance(pool.instance_type).vcpus)

    def check_quotas(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Family and total regional vCPU quota (limit minus current use) against the on-demand pools.

        Pools in a capacity reservation are left out: the reservation holds its quota already.
        """
        check = "compute:usage.list"
        by_site = {s.name: s for s in sites}
        groups: dict[tuple[str, str, str], list[PoolPlan]] = {}
        region_site: dict[tuple[str, str], SiteSpec] = {}
        for pool in pools:
            if pool.capacity_type != "on_demand":
                continue
            site = by_site[pool.site]
            try:
                sku = self.skus(site).get(pool.instance_type)
            except _errors():
                continue  # reported by the offering check
            if sku is None or not sku.family:
                continue
            sub = self.subscription_of(site) or ""
            groups.setdefault((sub, site.region.lower(), sku.family), []).append(pool)
            region_site.setdefault((sub, site.region.lower()), site)
        needed = {k: sum(self._vcpus(p) * p.nodes for p in g) for k, g in groups.items()}
        findings: list[Finding] = []
        totals: dict[tuple[str, str], list[PoolPlan]] = {}
        for (sub, region, family), group in sorted(groups.items()):
            totals.setdefault((sub, region), []).extend(group)
            site = region_site[(sub, region)]
            names = tuple(p.name for p in group)
            site_names = ",".join(sorted({p.site for p in group}))
            try:
                usage = self.usage(site)
            except _errors() as exc:
                findings.append(api_error(self.cloud, site_names, group, check, exc, f"the {family} quota in {region}"))
                continue
            need = needed[(sub, region, family)]
            findings.append(self._judge_quota(site, site_names, group, family, family, usage, need, sites, needed))
        for (sub, region), group in sorted(totals.items()):
            site = region_site[(sub, region)]
            try:
                usage = self.usage(site)
            except _errors():
                continue  # reported above
            need = sum(self._vcpus(p) * p.nodes for p in group)
            findings.append(self._judge_quota(site, ",".join(sorted({p.site for p in group})), group, TOTAL_CORES,
                                              "Total Regional vCPUs", usage, need, sites, None))
        return findings

    def _judge_quota(self, site: SiteSpec, site_names: str, group: Sequence[PoolPlan], key: str, label: str,
                     usage: dict[str, tuple[float, float]], need: float, sites: Sequence[SiteSpec],
                     needed: dict[tuple[str, str, str], float] | None) -> Finding:
        check = "compute:usage.list"
        names = tuple(p.name for p in group)
        if key.lower() not in usage:
            return Finding(self.cloud, "quota", "unknown", site_names, names, check,
                           f"usage.list in {site.region} reports no {label} quota; check it by hand")
        current, limit = usage[key.lower()]
        free = limit - current
        details = {"region": site.region, "quota": key, "needed_vcpus": need, "limit_vcpus": limit,
                   "current_vcpus": current, "free_vcpus": free}
        if need <= free:
            return Finding(self.cloud, "quota", "ok", site_names, names, check,
                           f"{label} in {site.region}: the plan needs {fmt_int(need)} vCPUs, {fmt_int(free)} of "
                           f"{fmt_int(limit)} are free", details=details)
        short = unfit_gpus(group, self._vcpus, free)
        message = (f"{label} in {site.region}: {fmt_int(free)} vCPUs free ({fmt_int(current)} used of "
                   f"{fmt_int(limit)}); the plan needs {fmt_int(need)} vCPUs: short by {fmt_int(need - free)} vCPUs, "
                   f"{short} GPUs. Request an increase of the quota to at least {fmt_int(current + need)} vCPUs, "
                   "or move capacity")
        alts: list[Alternative] = []
        if needed is not None:
            pool = max(group, key=lambda p: p.gpus)
            vcpus = self._vcpus(pool)
            for other in sites:
                if other.region.lower() == site.region.lower():
                    continue
                try:
                    sku = self.skus(other).get(pool.instance_type)
                    there = self.usage(other).get(key.lower())
                except _errors():
                    continue
                if sku is None or sku.location_restriction or there is None:
                    continue
                used_by_plan = needed.get((self.subscription_of(other) or "", other.region.lower(), key), 0.0)
                room = there[1] - there[0] - used_by_plan
                nodes = math.floor(room / vcpus) if vcpus else 0
                zones = tuple(z for z in other.zones if z in sku.zones)
                if nodes > 0 and zones:
                    alts.append(Alternative("site", other.name, other.region, zones, pool.instance_type,
                                            min(short, nodes * pool.gpus_per_node), True,
                                            f"{fmt_int(room)} vCPUs of {key} free in {other.region} after its own "
                                            f"pools: room for {nodes} x {pool.instance_type}"))
        return Finding(self.cloud, "quota", "error", site_names, names, check, message, shortfall_gpus=short,
                       alternatives=rank_alternatives(alts, short), details=details)

    # --- reservations --------------------------------------------------------------------------------

    def check_reservations(self, site: SiteSpec, pools: Sequence[PoolPlan]) -> list[Finding]:
        """The capacity reservation group of each ``reservation`` pool reserves its size in its zones."""
        from azure.core.exceptions import ResourceNotFoundError

        check = "compute:capacity_reservations.list_by_capacity_reservation_group"
        findings: list[Finding] = []
        for pool in pools:
            if pool.capacity_type != "reservation" or not pool.reservation_id:
                continue
            rid = pool.reservation_id
            match = _GROUP_ID.match(rid)
            sub = match.group("sub") if match else (self.subscription_of(site) or "")
            rg = match.group("rg") if match else (site.resource_group or f"gpufleet-{site.name}")
            group = match.group("name") if match else rid
            try:
                items = list(self._client(sub).capacity_reservations.list_by_capacity_reservation_group(rg, group))
            except ResourceNotFoundError:
                items = None
            except _errors() as exc:
                findings.append(api_error(self.cloud, site.name, [pool], check, exc, f"reservation group {rid}"))
                continue
            if items is None:
                findings.append(Finding(
                    self.cloud, "reservation", "error", site.name, (pool.name,), check,
                    f"capacity reservation group {group} does not exist in resource group {rg} (or this identity "
                    f"cannot read it); {pool.nodes} x {pool.instance_type} ({pool.gpus} GPUs) count on it",
                    shortfall_gpus=pool.gpus, alternatives=self._on_demand(site, pool, pool.gpus),
                    details={"reservation_id": rid}))
                continue
            room = 0
            for item in items:
                props = item.properties
                state = str(getattr(props, "provisioning_state", "") or "")
                if str(item.sku.name) != pool.instance_type or state not in ("Succeeded", ""):
                    continue
                zones = [str(z) for z in (item.zones or [])]
                if zones and not set(zones) & set(pool.zones):
                    continue
                used = len(getattr(props, "virtual_machines_associated", None) or [])
                room += max(0, int(item.sku.capacity or 0) - used)
            if room >= pool.nodes:
                findings.append(Finding(self.cloud, "reservation", "ok", site.name, (pool.name,), check,
                                        f"capacity reservation group {group} has room for {room} x "
                                        f"{pool.instance_type} in zones {', '.join(pool.zones)}; the pool needs "
                                        f"{pool.nodes}", details={"reservation_id": rid, "room_vms": room}))
            else:
                short = (pool.nodes - room) * pool.gpus_per_node
                findings.append(Finding(
                    self.cloud, "reservation", "error", site.name, (pool.name,), check,
                    f"capacity reservation group {group} has room for {room} x {pool.instance_type} in zones "
                    f"{', '.join(pool.zones)}; the pool needs {pool.nodes}: short by {short} GPUs",
                    shortfall_gpus=short, alternatives=self._on_demand(site, pool, short),
                    details={"reservation_id": rid, "room_vms": room}))
        return findings

    def _on_demand(self, site: SiteSpec, pool: PoolPlan, short: int) -> tuple[Alternative, ...]:
        return rank_alternatives([Alternative(
            "on_demand", site.name, site.region, pool.zones, pool.instance_type, None, False,
            f"deploy on demand (capacity type on_demand); needs {fmt_int(self._vcpus(pool) * pool.nodes)} vCPUs "
            "of the size's family quota")], short)


def _errors() -> tuple[type[BaseException], ...]:
    """azure-core's errors: HTTP errors after retries, transport errors, auth failures."""
    from azure.core.exceptions import AzureError

    return (AzureError,)

"""AWS preflight through boto3: EC2 offerings and instance facts, Service Quotas, capacity reservations.

Calls, per region the plan uses (every call retried by botocore's ``standard`` retry mode):

* ``ec2:DescribeInstanceTypeOfferings`` (``LocationType=availability-zone``, filtered by instance
  type): is the type offered in each planned Availability Zone?
* ``ec2:DescribeInstanceTypes``: GPU model, count and memory, vCPUs and ``MaximumEfaInterfaces``
  against the catalog row the plan was sized with;
* ``service-quotas:GetServiceQuota`` (``ServiceCode=ec2``; falls back to
  ``GetAWSDefaultServiceQuota`` when no applied value exists): the family's On-Demand vCPU limit
  against the vCPUs of the region's on-demand pools;
* ``ec2:DescribeCapacityReservations``: the named reservation exists, is active, matches the
  instance type and zone and has enough available instances; if not, other active reservations
  of the type are offered as alternatives.

boto3 is imported inside the methods, so importing this module costs nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
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

QUOTA_CODES: dict[str, tuple[str, str]] = {
    "p": ("L-417A185B", "Running On-Demand P instances"),
    "g": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "vt": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
}
"""Instance family letters -> (Service Quotas code, quota name) of its On-Demand vCPU quota
(ServiceCode ``ec2``). Source: the Service Quotas console / ``list-service-quotas --service-code
ec2``; codes cross-checked in public quota scripts on 2026-11-26."""

GIB_TOLERANCE = 0.011
"""The catalog rounds GiB to two decimals."""

ClientFactory = Callable[[str, str], Any]
"""``(service_name, region) -> boto3 client``."""


def quota_family(instance_type: str) -> str:
    """The family letters that pick the On-Demand quota: ``p6-b200.48xlarge`` -> ``p``, ``g6e`` -> ``g``."""
    match = re.match(r"[a-z]+", instance_type)
    return match.group(0) if match else ""


def compare_instance_type(row: InstanceType, item: dict[str, Any]) -> list[str]:
    """Where EC2's ``DescribeInstanceTypes`` entry disagrees with the catalog row (empty: agrees)."""
    problems: list[str] = []
    gpus = (item.get("GpuInfo") or {}).get("Gpus") or []
    count = sum(int(g.get("Count", 0)) for g in gpus)
    if count != row.gpus:
        problems.append(f"GPUs per node: EC2 {count}, catalog {row.gpus}")
    if gpus:
        name = str(gpus[0].get("Name", ""))
        if name and row.gpu.split("-")[0].upper() != name.upper():
            problems.append(f"GPU model: EC2 {name}, catalog {row.gpu}")
        mib = (gpus[0].get("MemoryInfo") or {}).get("SizeInMiB")
        if mib is not None and abs(mib / 1024 - row.gpu_memory_gib) > GIB_TOLERANCE:
            problems.append(f"GPU memory: EC2 {mib / 1024:.2f} GiB ({mib} MiB), catalog {row.gpu_memory_gib:.2f} GiB")
    network = item.get("NetworkInfo") or {}
    efa = int((network.get("EfaInfo") or {}).get("MaximumEfaInterfaces", 0)) if network.get("EfaSupported") else 0
    expected_efa = row.fabric_interfaces if row.fabric == "efa" else 0
    if efa != expected_efa:
        problems.append(f"EFA interfaces: EC2 {efa}, catalog {expected_efa}")
    vcpus = (item.get("VCpuInfo") or {}).get("DefaultVCpus")
    if vcpus is not None and int(vcpus) != row.vcpus:
        problems.append(f"vCPUs: EC2 {vcpus}, catalog {row.vcpus}")
    return problems


@register
class AwsChecker(CloudChecker):
    """Checks AWS pools with boto3 (see the module docstring for the calls)."""

    cloud = "aws"
    credential_source = "botocore credential chain"

    def __init__(self, options: PreflightOptions | None = None, *, client_factory: ClientFactory | None = None) -> None:
        super().__init__(options)
        self._factory: ClientFactory = client_factory or self.make_client
        self._session: Any = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._offered: dict[str, dict[str, set[str]]] = {}
        self._quotas: dict[tuple[str, str], float | BaseException] = {}
        self._failed_regions: dict[str, BaseException] = {}
        self._needed_vcpus: dict[tuple[str, str], float] = {}  # on-demand vCPUs the plan puts under each quota

    # --- clients and credentials -------------------------------------------------------------------

    def make_client(self, service: str, region: str) -> Any:
        """A boto3 client with standard-mode retries, timeouts and the endpoint override."""
        from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]

        config = Config(
            retries={"mode": "standard", "total_max_attempts": self.options.max_attempts},
            connect_timeout=self.options.timeout_s,
            read_timeout=self.options.timeout_s,
        )
        return self._boto_session().client(service, region_name=region, endpoint_url=self.options.aws_endpoint_url,
                                           config=config)

    def _boto_session(self) -> Any:
        if self._session is None:
            import boto3  # type: ignore[import-untyped,unused-ignore]

            self._session = boto3.session.Session()
        return self._session

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._factory(service, region)
        return self._clients[key]

    def credentials_problem(self) -> str | None:
        """Why AWS cannot be checked, or None when botocore's chain finds credentials.

        The chain (environment, shared files, SSO, container and instance metadata) is botocore's
        own; the instance-metadata probe has botocore's short timeout (1 s, one attempt).
        """
        from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped,unused-ignore]

        try:
            credentials = self._boto_session().get_credentials()
        except BotoCoreError as exc:
            return f"AWS credentials could not be loaded ({exc})"
        if credentials is None:
            return ("no AWS credentials found (botocore's chain: environment, shared credentials and config "
                    "files, SSO, container and instance metadata)")
        return None

    # --- the seam ------------------------------------------------------------------------------------

    def check_site_catalog(self, site: SiteSpec, mine: Sequence[PoolPlan], pools: Sequence[PoolPlan],
                           described: set[str]) -> list[Finding]:
        offered = self._offered.get(site.region, {})
        types = [t for t in sorted({p.instance_type for p in mine} - described) if offered.get(t)]
        if not types:
            return []
        described.update(types)
        return self.check_catalog(site.region, types, site=site.name,
                                  pools=[p for p in pools if p.instance_type in types])

    # --- offerings -----------------------------------------------------------------------------------

    def offered_zones(self, region: str, instance_types: Sequence[str]) -> dict[str, set[str]]:
        """Availability Zones of ``region`` that offer each type (``DescribeInstanceTypeOfferings``)."""
        if region in self._failed_regions:
            raise self._failed_regions[region]
        known = self._offered.setdefault(region, {})
        missing = sorted(set(instance_types) - set(known))
        if missing:
            try:
                found = self._describe_offerings(region, missing)
            except _errors() as exc:
                self._failed_regions[region] = exc  # asked once, not once per check
                raise
            known.update(found)
        return {t: known[t] for t in instance_types}

    def _describe_offerings(self, region: str, missing: list[str]) -> dict[str, set[str]]:
        ec2 = self._client("ec2", region)
        found: dict[str, set[str]] = {t: set() for t in missing}
        paginator = ec2.get_paginator("describe_instance_type_offerings")
        for start in range(0, len(missing), 100):
            pages = paginator.paginate(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": missing[start:start + 100]}],
            )
            for page in pages:
                for offer in page.get("InstanceTypeOfferings", []):
                    found.setdefault(offer["InstanceType"], set()).add(offer["Location"])
        return found

    def _same_gpu(self, pool: PoolPlan) -> list[InstanceType]:
        return [r for r in self.catalog.instances_with_gpu(pool.gpu, self.cloud) if r.instance_type != pool.instance_type]

    def check_offerings(self, site: SiteSpec, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Is each pool's instance type offered in each of its zones?"""
        findings: list[Finding] = []
        check = "ec2:DescribeInstanceTypeOfferings"
        for pool in pools:
            types = [pool.instance_type, *(r.instance_type for r in self._same_gpu(pool))]
            try:
                offered = self.offered_zones(site.region, types)
            except _errors() as exc:
                findings.append(api_error(self.cloud, site.name, [pool], check, exc,
                                          f"the offering of {pool.instance_type} in {site.region}"))
                continue
            zones = offered[pool.instance_type]
            missing = [z for z in pool.zones if z not in zones]
            if not missing:
                findings.append(Finding(self.cloud, "offering", "ok", site.name, (pool.name,), check,
                                        f"{pool.instance_type} is offered in {', '.join(pool.zones)} ({site.region})"))
                continue
            nodes = nodes_in(pool, missing)
            short = nodes * pool.gpus_per_node
            where = (f"EC2 offers it in {', '.join(sorted(zones))} of {site.region}" if zones
                     else f"EC2 offers it in no zone of {site.region}")
            message = (f"{pool.instance_type} is not offered in {', '.join(missing)}; {where}. "
                       f"{nodes} nodes ({short} GPUs) are planned there")
            alternatives = self._offering_alternatives(site, pool, missing, offered, sites, short)
            findings.append(Finding(self.cloud, "offering", "error", site.name, (pool.name,), check, message,
                                    shortfall_gpus=short, alternatives=alternatives,
                                    details={"region": site.region, "zones_not_offered": missing,
                                             "zones_offered": sorted(zones)}))
        return findings

    def _offering_alternatives(self, site: SiteSpec, pool: PoolPlan, missing: list[str],
                               offered: dict[str, set[str]], sites: Sequence[SiteSpec],
                               short: int) -> tuple[Alternative, ...]:
        itype = pool.instance_type
        alts: list[Alternative] = []
        here = offered[itype]
        for zone in site.zones:
            if zone not in pool.zones and zone in here:
                alts.append(Alternative("zone", site.name, site.region, (zone,), itype, None, True,
                                        f"a declared zone of {site.name} where EC2 offers {itype}"))
        for zone in sorted(here - set(site.zones)):
            alts.append(Alternative("zone", site.name, site.region, (zone,), itype, None, False,
                                    f"EC2 offers {itype} in {zone}, which {site.name} does not declare: "
                                    "add it to the site's zones"))
        for row in self._same_gpu(pool):
            if all(z in offered.get(row.instance_type, set()) for z in missing):
                nodes = math.ceil(short / row.gpus)
                allowed = row.instance_type in pool.fallback_instance_types
                alts.append(Alternative(
                    "instance_type", site.name, site.region, tuple(missing), row.instance_type, None, allowed,
                    f"same GPU ({pool.gpu}): {nodes} x {row.instance_type} ({row.gpus} GPUs per node) carry "
                    f"the {short} GPUs" + ("" if allowed else "; add it to the workload's instance_types")))
        for other in sites:
            if other.name == site.name:
                continue
            try:
                there = self.offered_zones(other.region, [itype])[itype]
            except _errors():
                continue
            zones = tuple(z for z in other.zones if z in there)
            if zones:
                alts.append(Alternative("site", other.name, other.region, zones, itype, None, True,
                                        f"EC2 offers {itype} in {', '.join(zones)}"))
        return rank_alternatives(alts, short)

    # --- catalog -------------------------------------------------------------------------------------

    def describe_instance_types(self, region: str, instance_types: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``DescribeInstanceTypes`` entries by name; a type EC2 rejects is left out."""
        from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

        ec2 = self._client("ec2", region)
        found: dict[str, dict[str, Any]] = {}
        names = list(instance_types)
        for start in range(0, len(names), 100):
            batch = names[start:start + 100]
            try:
                items = ec2.describe_instance_types(InstanceTypes=batch)["InstanceTypes"]
            except ClientError as exc:
                if _code(exc) != "InvalidInstanceType":
                    raise
                if len(batch) == 1:  # EC2 does not know this type here
                    continue
                # One unknown name fails the whole batch: ask one by one, keep the others.
                items = [item for name in batch for item in self.describe_instance_types(region, [name]).values()]
            for item in items:
                found[item["InstanceType"]] = item
        return found

    def check_catalog(self, region: str, instance_types: Sequence[str], *, site: str = "",
                      pools: Sequence[PoolPlan] = ()) -> list[Finding]:
        """EC2's GPU count and memory, vCPUs and EFA interfaces against the catalog rows."""
        check = "ec2:DescribeInstanceTypes"
        names_for = {t: tuple(p.name for p in pools if p.instance_type == t) for t in instance_types}
        sites_for = {t: ",".join(sorted({p.site for p in pools if p.instance_type == t})) or site
                     for t in instance_types}
        try:
            described = self.describe_instance_types(region, instance_types)
        except _errors() as exc:
            return [api_error(self.cloud, site, [n for t in instance_types for n in names_for[t]], check, exc,
                              f"catalog agreement of {', '.join(instance_types)}")]
        findings: list[Finding] = []
        for itype in instance_types:
            row = self.catalog.instance(itype)
            item = described.get(itype)
            if item is None:
                findings.append(Finding(self.cloud, "catalog", "error", sites_for[itype], names_for[itype], check,
                                        f"EC2 does not describe {itype} in {region}; the catalog row cannot be "
                                        "confirmed"))
                continue
            problems = compare_instance_type(row, item)
            if problems:
                findings.append(Finding(self.cloud, "catalog", "error", sites_for[itype], names_for[itype], check,
                                        f"the catalog disagrees with EC2 for {itype}: {'; '.join(problems)} "
                                        "(the plan was sized with the catalog's figures)",
                                        details={"instance_type": itype, "mismatches": problems}))
            else:
                findings.append(Finding(self.cloud, "catalog", "ok", sites_for[itype], names_for[itype], check,
                                        f"{itype}: {row.gpus} x {row.gpu} with {row.gpu_memory_gib:g} GiB each, "
                                        f"{row.vcpus} vCPUs, {row.fabric_interfaces if row.fabric == 'efa' else 0} "
                                        "EFA interfaces, as in the catalog"))
        return findings

    # --- quotas --------------------------------------------------------------------------------------

    def quota_vcpus(self, region: str, code: str) -> float:
        """The account's value of an EC2 quota in ``region`` (vCPUs), applied or else default."""
        from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

        key = (region, code)
        if key not in self._quotas:
            sq = self._client("service-quotas", region)
            try:
                try:
                    value = sq.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
                except ClientError as exc:
                    if _code(exc) != "NoSuchResourceException":
                        raise
                    value = sq.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
                self._quotas[key] = float(value)
            except _errors() as exc:
                self._quotas[key] = exc  # asked once, not once per check
        value = self._quotas[key]
        if isinstance(value, BaseException):
            raise value
        return value

    def check_quotas(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """The On-Demand vCPU quota of each (region, family) against the on-demand pools there.

        Pools that launch into a reservation are left out: a reservation takes its quota when it
        is created, and the reservation check covers them.
        """
        check = "service-quotas:GetServiceQuota"
        findings: list[Finding] = []
        groups: dict[tuple[str, str], list[PoolPlan]] = {}
        for pool in pools:
            if pool.capacity_type != "on_demand":
                continue
            family = quota_family(pool.instance_type)
            if family not in QUOTA_CODES:
                findings.append(Finding(self.cloud, "quota", "unknown", pool.site, (pool.name,), check,
                                        f"no On-Demand vCPU quota code is known for the {family!r} family of "
                                        f"{pool.instance_type}; check its quota by hand"))
                continue
            groups.setdefault((pool.region, QUOTA_CODES[family][0]), []).append(pool)
        needed = {key: sum(self._vcpus(p) * p.nodes for p in group) for key, group in groups.items()}
        self._needed_vcpus.update(needed)
        for (region, code), group in sorted(groups.items()):
            name = next(n for c, n in QUOTA_CODES.values() if c == code)
            site = ",".join(sorted({p.site for p in group}))
            pool_names = tuple(p.name for p in group)
            need = needed[(region, code)]
            try:
                limit = self.quota_vcpus(region, code)
            except _errors() as exc:
                findings.append(api_error(self.cloud, site, group, check, exc, f"the {name} quota in {region}"))
                continue
            details = {"region": region, "quota_code": code, "needed_vcpus": need, "limit_vcpus": limit}
            if need <= limit:
                findings.append(Finding(self.cloud, "quota", "ok", site, pool_names, check,
                                        f"{name} ({code}) in {region}: the plan needs {fmt_int(need)} vCPUs of "
                                        f"{fmt_int(limit)}", details=details))
                continue
            short = unfit_gpus(group, self._vcpus, limit)
            parts = ", ".join(f"{p.nodes} x {p.instance_type} = {fmt_int(self._vcpus(p) * p.nodes)} vCPUs" for p in group)
            message = (f"{name} ({code}) in {region} is {fmt_int(limit)} vCPUs; the plan needs {fmt_int(need)} "
                       f"vCPUs ({parts}): short by {fmt_int(need - limit)} vCPUs, {short} GPUs. Request an "
                       f"increase to at least {fmt_int(need)} vCPUs, or move capacity")
            alternatives = self._quota_alternatives(group, region, code, sites, needed, short)
            findings.append(Finding(self.cloud, "quota", "error", site, pool_names, check, message,
                                    shortfall_gpus=short, alternatives=alternatives, details=details))
        return findings

    def _vcpus(self, pool: PoolPlan) -> float:
        return float(self.catalog.instance(pool.instance_type).vcpus)

    def _quota_alternatives(self, group: Sequence[PoolPlan], region: str, code: str, sites: Sequence[SiteSpec],
                            needed: dict[tuple[str, str], float], short: int) -> tuple[Alternative, ...]:
        pool = max(group, key=lambda p: p.gpus)
        itype = pool.instance_type
        vcpus = self._vcpus(pool)
        alts: list[Alternative] = []
        for other in sites:
            if other.region == region:
                continue
            try:
                there = self.offered_zones(other.region, [itype])[itype]
                free = self.quota_vcpus(other.region, code) - needed.get((other.region, code), 0.0)
            except _errors():
                continue
            zones = tuple(z for z in other.zones if z in there)
            nodes = math.floor(free / vcpus) if vcpus else 0
            if zones and nodes > 0:
                cover = min(short, nodes * pool.gpus_per_node)
                alts.append(Alternative("site", other.name, other.region, zones, itype, cover, True,
                                        f"{fmt_int(free)} vCPUs of {code} left in {other.region} after its own "
                                        f"pools: room for {nodes} x {itype} ({nodes * pool.gpus_per_node} GPUs)"))
        for row in self._same_gpu(pool):
            family = QUOTA_CODES.get(quota_family(row.instance_type))
            if family is None or family[0] == code:
                continue
            try:
                free = self.quota_vcpus(region, family[0]) - needed.get((region, family[0]), 0.0)
                there = self.offered_zones(region, [row.instance_type])[row.instance_type]
            except _errors():
                continue
            nodes = math.floor(free / row.vcpus)
            zones = tuple(z for z in pool.zones if z in there)
            if zones and nodes > 0:
                cover = min(short, nodes * row.gpus)
                alts.append(Alternative("instance_type", pool.site, region, zones, row.instance_type, cover,
                                        row.instance_type in pool.fallback_instance_types,
                                        f"same GPU ({pool.gpu}) under quota {family[0]}: room for {nodes} x "
                                        f"{row.instance_type}"))
        return rank_alternatives(alts, short)

    # --- reservations --------------------------------------------------------------------------------

    def check_reservations(self, site: SiteSpec, pools: Sequence[PoolPlan]) -> list[Finding]:
        """The named ODCR / Capacity Block of each pool: exists, active, right type, zone and size."""
        from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

        check = "ec2:DescribeCapacityReservations"
        findings: list[Finding] = []
        for pool in pools:
            if pool.capacity_type not in ("odcr", "capacity_block") or not pool.reservation_id:
                continue
            rid = pool.reservation_id
            ec2 = self._client("ec2", site.region)
            try:
                items = ec2.describe_capacity_reservations(CapacityReservationIds=[rid])["CapacityReservations"]
            except ClientError as exc:
                if _code(exc) not in ("InvalidCapacityReservationId.NotFound", "InvalidCapacityReservationId.Malformed"):
                    findings.append(api_error(self.cloud, site.name, [pool], check, exc, f"reservation {rid}"))
                    continue
                items = []
            except _errors() as exc:
                findings.append(api_error(self.cloud, site.name, [pool], check, exc, f"reservation {rid}"))
                continue
            if not items:
                message = (f"capacity reservation {rid} does not exist in {site.region} (or this account cannot "
                           f"see it); {pool.nodes} x {pool.instance_type} ({pool.gpus} GPUs) count on it")
                findings.append(Finding(self.cloud, "reservation", "error", site.name, (pool.name,), check, message,
                                        shortfall_gpus=pool.gpus,
                                        alternatives=self._reservation_alternatives(site, pool, pool.gpus, rid),
                                        details={"reservation_id": rid, "region": site.region}))
                continue
            findings.append(self._judge_reservation(site, pool, items[0]))
        return findings

    def _judge_reservation(self, site: SiteSpec, pool: PoolPlan, cr: dict[str, Any]) -> Finding:
        rid = cr.get("CapacityReservationId", pool.reservation_id or "")
        state = str(cr.get("State", ""))
        itype = str(cr.get("InstanceType", ""))
        zone = str(cr.get("AvailabilityZone", ""))
        available = int(cr.get("AvailableInstanceCount", 0))
        total = int(cr.get("TotalInstanceCount", 0))
        problems: list[str] = []
        warnings: list[str] = []
        if state == "scheduled":
            start = cr.get("StartDate")
            warnings.append(f"it is scheduled, not yet active (starts {start})" if start else "it is scheduled, not yet active")
        elif state != "active":
            problems.append(f"its state is {state!r}, not 'active'")
        if itype != pool.instance_type:
            problems.append(f"it reserves {itype}, the pool uses {pool.instance_type}")
        if zone not in pool.zones:
            problems.append(f"it is in {zone}, the pool is planned in {', '.join(pool.zones)}")
        usable = 0 if problems else available
        if usable < pool.nodes:
            problems.append(f"{available} of its {total} instances are available, the pool needs {pool.nodes}")
        details = {"reservation_id": rid, "state": state, "instance_type": itype, "availability_zone": zone,
                   "available_instances": available, "total_instances": total}
        check = "ec2:DescribeCapacityReservations"
        if problems:
            short = max(0, pool.nodes - usable) * pool.gpus_per_node
            return Finding(self.cloud, "reservation", "error", site.name, (pool.name,), check,
                           f"capacity reservation {rid} cannot carry {pool.name}: {'; '.join(problems + warnings)}",
                           shortfall_gpus=short, details=details,
                           alternatives=self._reservation_alternatives(site, pool, short, rid))
        if warnings:
            return Finding(self.cloud, "reservation", "warning", site.name, (pool.name,), check,
                           f"capacity reservation {rid} has room for {pool.nodes} x {itype} in {zone}, but "
                           f"{'; '.join(warnings)}", details=details)
        return Finding(self.cloud, "reservation", "ok", site.name, (pool.name,), check,
                       f"capacity reservation {rid} is active in {zone} with {available} of {total} x {itype} "
                       f"available; the pool needs {pool.nodes}", details=details)

    def _reservation_alternatives(self, site: SiteSpec, pool: PoolPlan, short: int,
                                  exclude: str) -> tuple[Alternative, ...]:
        itype = pool.instance_type
        alts: list[Alternative] = []
        try:
            ec2 = self._client("ec2", site.region)
            paginator = ec2.get_paginator("describe_capacity_reservations")
            pages = paginator.paginate(Filters=[{"Name": "instance-type", "Values": [itype]},
                                                {"Name": "state", "Values": ["active"]}])
            items = [cr for page in pages for cr in page.get("CapacityReservations", [])]
        except _errors():
            items = []
        for cr in items:
            rid = cr.get("CapacityReservationId", "")
            available = int(cr.get("AvailableInstanceCount", 0))
            zone = str(cr.get("AvailabilityZone", ""))
            if rid == exclude or available <= 0 or cr.get("InstanceType") != itype:
                continue
            extra = "" if zone in pool.zones else f" and zone: {zone}"
            alts.append(Alternative("reservation", site.name, site.region, (zone,), itype,
                                    min(short, available * pool.gpus_per_node), False,
                                    f"{rid} in {zone}: {available} of {cr.get('TotalInstanceCount', '?')} x {itype} "
                                    f"available; set reservation_id: {rid}{extra}"))
        family = QUOTA_CODES.get(quota_family(itype))
        need = self._vcpus(pool) * pool.nodes
        cover: int | None = None
        quota = ""
        if family is not None:
            quota = f"; needs {fmt_int(need)} vCPUs of {family[0]} {family[1]}"
            try:
                free = self.quota_vcpus(site.region, family[0]) - self._needed_vcpus.get((site.region, family[0]), 0.0)
            except _errors():
                free = None
            if free is not None:
                nodes = max(0, math.floor(free / self._vcpus(pool)))
                cover = min(short, nodes * pool.gpus_per_node)
                quota += f", {fmt_int(max(free, 0))} are left after the on-demand pools"
        if cover != 0:
            alts.append(Alternative("on_demand", site.name, site.region, pool.zones, itype, cover, False,
                                    f"launch on demand in {', '.join(pool.zones)} (capacity type on_demand){quota}; "
                                    "no capacity is held"))
        return rank_alternatives(alts, short)


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _errors() -> tuple[type[BaseException], ...]:
    """botocore's errors: service errors after retries (ClientError), transport and configuration
    errors, and answers it cannot parse (an endpoint that is not EC2, or an emulator's 500 page)."""
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped,unused-ignore]
    from botocore.parsers import ResponseParserError  # type: ignore[import-untyped,unused-ignore]

    return (ClientError, BotoCoreError, ResponseParserError)

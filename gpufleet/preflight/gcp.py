"""GCP preflight through google-cloud-compute (REST transport): machine types, regional GPU quotas,
reservations.

Calls (retried by google-api-core's ``Retry`` on 429, 500, 502, 503, 504 and deadline errors, with
exponential backoff up to ``retry_deadline_s``):

* ``MachineTypesClient.get(project, zone, machine_type)`` per planned zone (404 ``NotFound``: not
  offered there); its ``guestCpus`` and ``accelerators`` against the catalog row; its accelerator
  type picks the quota metric;
* ``RegionsClient.get(project, region)`` -> ``quotas``: ``limit - usage`` of the GPU metric
  (``NVIDIA_H100_GPUS``, ``NVIDIA_H200_GPUS``, ``NVIDIA_L4_GPUS``…) against the GPUs of the region's
  on-demand pools;
* ``ReservationsClient.get(project, zone, reservation)``: the reservation a pool counts on exists,
  is ``READY``, reserves its machine type and has ``count - inUseCount`` VMs of room.

Credentials: ``google.auth.default()`` (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application
default credentials, GCE metadata). Off Google Cloud the metadata probe is answered "not here" at
once instead of waiting on its network timeouts. The project is the site's ``project`` or the
default credentials' project.
"""

from __future__ import annotations

import math
import os
import re
import warnings
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
    nodes_in,
    not_checked,
    rank_alternatives,
    register,
    unfit_gpus,
)
from gpufleet.spec import SiteSpec

SCOPE = "https://www.googleapis.com/auth/compute.readonly"

GPU_QUOTA_METRICS: dict[str, str] = {
    "nvidia-tesla-a100": "NVIDIA_A100_GPUS",
    "nvidia-a100-80gb": "NVIDIA_A100_80GB_GPUS",
    "nvidia-h100-80gb": "NVIDIA_H100_GPUS",
    "nvidia-h100-mega-80gb": "NVIDIA_H100_MEGA_GPUS",
    "nvidia-h200-141gb": "NVIDIA_H200_GPUS",
    "nvidia-b200": "NVIDIA_B200_GPUS",
    "nvidia-l4": "NVIDIA_L4_GPUS",
}
"""Accelerator type (``machineTypes.get`` -> ``accelerators[].guestAcceleratorType``) -> the regional
on-demand quota metric in ``regions.get`` -> ``quotas[].metric``. The first four and L4 are in the
Compute API's ``Quota.Metric`` enum (google-cloud-compute 1.48); the H100 Mega, H200 and B200 names are
from Google's quota pages as quoted in public deployment scripts, not from the enum. Newer GPUs may be
metered only as ``GPUS_PER_GPU_FAMILY`` in the Cloud Quotas API: when the region lists no metric for
the GPU, the quota is reported as not checked, never as a pass."""

ClientFactory = Callable[[str, Any], Any]
"""``(kind, credentials) -> client``; ``kind`` is ``machine_types``, ``regions`` or ``reservations``."""

_RESERVATION_PATH = re.compile(r"(?:^|/)projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/reservations/(?P<name>[^/]+)$")


def _compute_v1() -> Any:
    with warnings.catch_warnings():
        # google-api-core warns at import time about its own Python support schedule; not ours to act on.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core\..*")
        from google.cloud import compute_v1
    return compute_v1


class _NoMetadataServer:
    """A google-auth transport that answers the GCE metadata probe "not found" at once."""

    class _Response:
        status = 404
        headers: dict[str, str] = {}
        data = b""

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: Any = None, **kwargs: Any) -> Any:
        return self._Response()


def _on_google_cloud() -> bool:
    if os.environ.get("GCE_METADATA_HOST") or os.environ.get("GCE_METADATA_IP"):
        return True
    try:
        with open("/sys/class/dmi/id/product_name", encoding="utf-8") as fh:
            return fh.read().strip().startswith("Google")
    except OSError:
        return False


def detect_credentials() -> tuple[Any, str | None, str | None]:
    """``(credentials, default project, None)`` or ``(None, None, why)``, without hanging off GCE."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    request: Any = None
    if not _on_google_cloud():
        request = _NoMetadataServer()
    try:
        credentials, project = google.auth.default(scopes=[SCOPE], request=request)
    except DefaultCredentialsError as exc:
        first = str(exc).strip().splitlines()[0]
        return None, None, f"no Google credentials found (google.auth.default: {first})"
    return credentials, project, None


@register
class GcpChecker(CloudChecker):
    """Checks GCP pools with google-cloud-compute (see the module docstring for the calls)."""

    cloud = "gcp"
    credential_source = "google.auth.default"

    def __init__(self, options: PreflightOptions | None = None, *, credentials: Any = None,
                 project: str | None = None, client_factory: ClientFactory | None = None) -> None:
        super().__init__(options)
        self.credentials = credentials
        self.default_project = project
        self._factory: ClientFactory = client_factory or self.make_client
        self._clients: dict[str, Any] = {}
        self._machine_types: dict[tuple[str, str, str], Any] = {}
        self._quotas: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}

    def make_client(self, kind: str, credentials: Any) -> Any:
        """A REST client of google-cloud-compute."""
        compute_v1 = _compute_v1()
        cls = {"machine_types": compute_v1.MachineTypesClient, "regions": compute_v1.RegionsClient,
               "reservations": compute_v1.ReservationsClient}[kind]
        return cls(credentials=credentials, transport="rest")

    def _client(self, kind: str) -> Any:
        if kind not in self._clients:
            self._clients[kind] = self._factory(kind, self.credentials)
        return self._clients[kind]

    def _call_options(self) -> dict[str, Any]:
        from google.api_core import exceptions as gexc
        from google.api_core import retry

        o = self.options
        return {
            "retry": retry.Retry(
                predicate=retry.if_exception_type(gexc.TooManyRequests, gexc.InternalServerError, gexc.BadGateway,
                                                  gexc.ServiceUnavailable, gexc.GatewayTimeout, gexc.DeadlineExceeded),
                initial=o.backoff_initial_s, maximum=o.backoff_max_s, multiplier=2.0, timeout=o.retry_deadline_s),
            "timeout": o.timeout_s,
        }

    def project_of(self, site: SiteSpec) -> str | None:
        return site.project or self.default_project

    # --- the seam ------------------------------------------------------------------------------------

    def credentials_problem(self) -> str | None:
        if self.credentials is None:
            credentials, project, problem = detect_credentials()
            if problem:
                return problem
            self.credentials, self.default_project = credentials, self.default_project or project
        return None

    def site_unusable(self, site: SiteSpec) -> tuple[str, str] | None:
        if self.project_of(site) is None:
            return "project", f"site {site.name} has no project and the credentials name none"
        return None

    def check_site_catalog(self, site: SiteSpec, mine: Sequence[PoolPlan], pools: Sequence[PoolPlan],
                           described: set[str]) -> list[Finding]:
        findings: list[Finding] = []
        for pool in mine:
            if pool.instance_type not in described:
                catalog = self.check_catalog(site, pool, [p for p in pools if p.instance_type == pool.instance_type])
                if catalog:
                    described.add(pool.instance_type)
                    findings += catalog
        return findings

    # --- machine types -------------------------------------------------------------------------------

    def machine_type(self, project: str, zone: str, name: str) -> Any:
        """``MachineTypesClient.get``; ``None`` when the zone does not offer ``name`` (404)."""
        from google.api_core.exceptions import NotFound

        key = (project, zone, name)
        if key not in self._machine_types:
            try:
                self._machine_types[key] = self._client("machine_types").get(
                    project=project, zone=zone, machine_type=name, **self._call_options())
            except NotFound:
                self._machine_types[key] = None
        return self._machine_types[key]

    def _offered_in(self, site: SiteSpec, name: str, zones: Sequence[str]) -> list[str]:
        project = self.project_of(site) or ""
        return [z for z in zones if self.machine_type(project, z, name) is not None]

    def _same_gpu(self, pool: PoolPlan) -> list[InstanceType]:
        return [r for r in self.catalog.instances_with_gpu(pool.gpu, self.cloud) if r.instance_type != pool.instance_type]

    def check_offerings(self, site: SiteSpec, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Does each planned zone offer the pool's machine type?"""
        check = "compute:machineTypes.get"
        findings: list[Finding] = []
        for pool in pools:
            try:
                offered = self._offered_in(site, pool.instance_type, pool.zones)
            except _errors() as exc:
                findings.append(api_error(self.cloud, site.name, [pool], check, exc,
                                          f"the offering of {pool.instance_type} in {site.region}"))
                continue
            missing = [z for z in pool.zones if z not in offered]
            if not missing:
                findings.append(Finding(self.cloud, "offering", "ok", site.name, (pool.name,), check,
                                        f"{pool.instance_type} is offered in {', '.join(pool.zones)}"))
                continue
            nodes = nodes_in(pool, missing)
            short = nodes * pool.gpus_per_node
            message = (f"{pool.instance_type} is not offered in {', '.join(missing)} (machineTypes.get: 404 Not "
                       f"Found); {nodes} nodes ({short} GPUs) are planned there")
            findings.append(Finding(self.cloud, "offering", "error", site.name, (pool.name,), check, message,
                                    shortfall_gpus=short,
                                    alternatives=self._offering_alternatives(site, pool, missing, sites, short),
                                    details={"region": site.region, "zones_not_offered": missing}))
        return findings

    def _offering_alternatives(self, site: SiteSpec, pool: PoolPlan, missing: list[str], sites: Sequence[SiteSpec],
                               short: int) -> tuple[Alternative, ...]:
        itype = pool.instance_type
        alts: list[Alternative] = []
        try:
            for zone in self._offered_in(site, itype, [z for z in site.zones if z not in pool.zones]):
                alts.append(Alternative("zone", site.name, site.region, (zone,), itype, None, True,
                                        f"a declared zone of {site.name} that offers {itype}"))
            for row in self._same_gpu(pool):
                if len(self._offered_in(site, row.instance_type, missing)) == len(missing):
                    allowed = row.instance_type in pool.fallback_instance_types
                    alts.append(Alternative(
                        "instance_type", site.name, site.region, tuple(missing), row.instance_type, None, allowed,
                        f"same GPU ({pool.gpu}): {math.ceil(short / row.gpus)} x {row.instance_type}"
                        + ("" if allowed else "; add it to the workload's instance_types")))
        except _errors():
            pass
        for other in sites:
            if other.name == site.name:
                continue
            try:
                zones = tuple(self._offered_in(other, itype, other.zones))
            except _errors():
                continue
            if zones:
                alts.append(Alternative("site", other.name, other.region, zones, itype, None, True,
                                        f"{itype} is offered in {', '.join(zones)}"))
        return rank_alternatives(alts, short)

    def _any_machine_type(self, site: SiteSpec, name: str, zones: Sequence[str]) -> Any:
        project = self.project_of(site) or ""
        for zone in zones:
            mt = self.machine_type(project, zone, name)
            if mt is not None:
                return mt
        return None

    def check_catalog(self, site: SiteSpec, pool: PoolPlan, pools: Sequence[PoolPlan]) -> list[Finding]:
        """The machine type's ``guestCpus`` and accelerator count against the catalog row."""
        check = "compute:machineTypes.get"
        try:
            mt = self._any_machine_type(site, pool.instance_type, pool.zones)
        except _errors():
            return []  # reported by the offering check
        if mt is None:
            return []
        row = self.catalog.instance(pool.instance_type)
        names = tuple(p.name for p in pools)
        where = ",".join(sorted({p.site for p in pools})) or site.name
        gpus = sum(int(a.guest_accelerator_count) for a in mt.accelerators)
        problems = []
        if gpus != row.gpus:
            problems.append(f"GPUs per VM: GCP {gpus}, catalog {row.gpus}")
        if int(mt.guest_cpus) != row.vcpus:
            problems.append(f"vCPUs: GCP {mt.guest_cpus}, catalog {row.vcpus}")
        if problems:
            return [Finding(self.cloud, "catalog", "error", where, names, check,
                            f"the catalog disagrees with GCP for {pool.instance_type}: {'; '.join(problems)}",
                            details={"instance_type": pool.instance_type, "mismatches": problems})]
        accel = ", ".join(sorted({a.guest_accelerator_type for a in mt.accelerators})) or "no accelerator"
        return [Finding(self.cloud, "catalog", "ok", where, names, check,
                        f"{pool.instance_type}: {gpus} x {accel}, {mt.guest_cpus} vCPUs, as in the catalog")]

    # --- quotas --------------------------------------------------------------------------------------

    def region_quotas(self, project: str, region: str) -> dict[str, tuple[float, float]]:
        """``RegionsClient.get`` -> metric -> (usage, limit)."""
        key = (project, region)
        if key not in self._quotas:
            found = self._client("regions").get(project=project, region=region, **self._call_options())
            self._quotas[key] = {str(q.metric): (float(q.usage), float(q.limit)) for q in found.quotas}
        return self._quotas[key]

    def _metric(self, site: SiteSpec, pool: PoolPlan) -> tuple[str | None, str]:
        mt = self._any_machine_type(site, pool.instance_type, pool.zones)
        if mt is None:
            mt = self._any_machine_type(site, pool.instance_type, site.zones)
        if mt is None or not mt.accelerators:
            return None, ""
        accel = str(mt.accelerators[0].guest_accelerator_type)
        return GPU_QUOTA_METRICS.get(accel), accel

    def check_quotas(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Each region's GPU quota (limit minus usage) against the GPUs of its on-demand pools.

        Pools in a reservation are left out: a reservation takes its quota when it is created.
        """
        check = "compute:regions.get"
        by_site = {s.name: s for s in sites}
        findings: list[Finding] = []
        groups: dict[tuple[str, str, str], list[PoolPlan]] = {}
        region_site: dict[tuple[str, str], SiteSpec] = {}
        for pool in pools:
            if pool.capacity_type != "on_demand":
                continue
            site = by_site[pool.site]
            try:
                metric, accel = self._metric(site, pool)
            except _errors():
                continue  # reported by the offering check
            if metric is None:
                if accel:
                    findings.append(Finding(self.cloud, "quota", "unknown", site.name, (pool.name,), check,
                                            f"no regional quota metric is known for accelerator {accel}; check "
                                            "its quota by hand"))
                continue
            project = self.project_of(site) or ""
            groups.setdefault((project, site.region, metric), []).append(pool)
            region_site.setdefault((project, site.region), site)
        needed = {k: float(sum(p.gpus for p in g)) for k, g in groups.items()}
        for (project, region, metric), group in sorted(groups.items()):
            site_names = ",".join(sorted({p.site for p in group}))
            names = tuple(p.name for p in group)
            try:
                quotas = self.region_quotas(project, region)
            except _errors() as exc:
                findings.append(api_error(self.cloud, site_names, group, check, exc, f"the {metric} quota of {region}"))
                continue
            need = needed[(project, region, metric)]
            if metric not in quotas:
                findings.append(Finding(
                    self.cloud, "quota", "unknown", site_names, names, check,
                    f"regions.get for {region} lists no {metric} quota; the GPU may be metered as "
                    "GPUS_PER_GPU_FAMILY in the Cloud Quotas API, which preflight does not read: check it by hand"))
                continue
            usage, limit = quotas[metric]
            free = limit - usage
            details = {"region": region, "metric": metric, "needed_gpus": need, "limit_gpus": limit,
                       "usage_gpus": usage, "free_gpus": free}
            if need <= free:
                findings.append(Finding(self.cloud, "quota", "ok", site_names, names, check,
                                        f"{metric} in {region}: the plan needs {need:,.0f} GPUs, {free:,.0f} of "
                                        f"{limit:,.0f} are free", details=details))
                continue
            short = unfit_gpus(group, lambda p: float(p.gpus_per_node), free)
            message = (f"{metric} in {region}: {free:,.0f} GPUs free ({usage:,.0f} used of {limit:,.0f}); the plan "
                       f"needs {need:,.0f} GPUs: short by {short} GPUs. Request an increase to at least "
                       f"{usage + need:,.0f} GPUs, or move capacity")
            alts: list[Alternative] = []
            pool = max(group, key=lambda p: p.gpus)
            for other in sites:
                if other.region == region:
                    continue
                other_project = self.project_of(other) or ""
                try:
                    zones = tuple(self._offered_in(other, pool.instance_type, other.zones))
                    there = self.region_quotas(other_project, other.region).get(metric)
                except _errors():
                    continue
                if not zones or there is None:
                    continue
                room = there[1] - there[0] - needed.get((other_project, other.region, metric), 0.0)
                nodes = math.floor(room / pool.gpus_per_node)
                if nodes > 0:
                    alts.append(Alternative("site", other.name, other.region, zones, pool.instance_type,
                                            min(short, nodes * pool.gpus_per_node), True,
                                            f"{room:,.0f} GPUs of {metric} free in {other.region} after its own "
                                            f"pools: room for {nodes} x {pool.instance_type}"))
            findings.append(Finding(self.cloud, "quota", "error", site_names, names, check, message,
                                    shortfall_gpus=short, alternatives=rank_alternatives(alts, short),
                                    details=details))
        return findings

    # --- reservations --------------------------------------------------------------------------------

    def check_reservations(self, site: SiteSpec, pools: Sequence[PoolPlan]) -> list[Finding]:
        """The named reservation of each ``reservation`` pool: exists, READY, right machine type, room."""
        from google.api_core.exceptions import NotFound

        check = "compute:reservations.get"
        findings: list[Finding] = []
        for pool in pools:
            if pool.capacity_type != "reservation" or not pool.reservation_id:
                continue
            match = _RESERVATION_PATH.search(pool.reservation_id)
            project = match.group("project") if match else (self.project_of(site) or "")
            zones = [match.group("zone")] if match else list(pool.zones)
            name = match.group("name") if match else pool.reservation_id
            found: Any = None
            try:
                for zone in zones:
                    try:
                        found = self._client("reservations").get(project=project, zone=zone, reservation=name,
                                                                  **self._call_options())
                        break
                    except NotFound:
                        continue
            except _errors() as exc:
                findings.append(api_error(self.cloud, site.name, [pool], check, exc, f"reservation {name}"))
                continue
            on_demand = rank_alternatives([Alternative(
                "on_demand", site.name, site.region, pool.zones, pool.instance_type, None, False,
                f"deploy on demand (capacity type on_demand); needs {pool.gpus} GPUs of regional GPU quota")],
                pool.gpus)
            if found is None:
                findings.append(Finding(
                    self.cloud, "reservation", "error", site.name, (pool.name,), check,
                    f"reservation {name} does not exist in {', '.join(zones)} of project {project}; "
                    f"{pool.nodes} x {pool.instance_type} ({pool.gpus} GPUs) count on it",
                    shortfall_gpus=pool.gpus, alternatives=on_demand, details={"reservation_id": name}))
                continue
            specific = found.specific_reservation
            machine = str(specific.instance_properties.machine_type)
            room = int(specific.count) - int(specific.in_use_count)
            zone = str(found.zone).rsplit("/", 1)[-1]
            problems = []
            if str(found.status) != "READY":
                problems.append(f"its status is {found.status}, not READY")
            if machine.rsplit("/", 1)[-1] != pool.instance_type:
                problems.append(f"it reserves {machine}, the pool uses {pool.instance_type}")
            usable = 0 if problems else room
            if usable < pool.nodes:
                problems.append(f"it has room for {room} of {specific.count} VMs, the pool needs {pool.nodes}")
            details = {"reservation_id": name, "zone": zone, "room_vms": room, "status": str(found.status)}
            if problems:
                short = (pool.nodes - usable) * pool.gpus_per_node
                findings.append(Finding(self.cloud, "reservation", "error", site.name, (pool.name,), check,
                                        f"reservation {name} in {zone} cannot carry {pool.name}: {'; '.join(problems)}",
                                        shortfall_gpus=short, alternatives=on_demand, details=details))
            else:
                findings.append(Finding(self.cloud, "reservation", "ok", site.name, (pool.name,), check,
                                        f"reservation {name} in {zone} is READY with room for {room} x "
                                        f"{pool.instance_type}; the pool needs {pool.nodes}", details=details))
        return findings


def _errors() -> tuple[type[BaseException], ...]:
    """Google's errors after retries: API errors, retry deadline, auth and transport failures."""
    import requests
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    return (GoogleAPIError, GoogleAuthError, requests.RequestException)

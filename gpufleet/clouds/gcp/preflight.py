"""GCP preflight reads through google-cloud-compute (REST transport): machine types, regional GPU
quotas, reservations.

Calls (retried by google-api-core's ``Retry`` on 429, 500, 502, 503, 504 and deadline errors, with
exponential backoff up to ``retry_deadline_s``):

* ``MachineTypesClient.get(project, zone, machine_type)`` per zone asked (404 ``NotFound``: not
  offered there): its ``guestCpus`` and ``accelerators``; its accelerator type picks the quota metric;
* ``RegionsClient.get(project, region)`` -> ``quotas``: ``limit`` and ``usage`` of the GPU metric
  (``NVIDIA_H100_GPUS``, ``NVIDIA_H200_GPUS``, ``NVIDIA_L4_GPUS``…);
* ``ReservationsClient.get(project, zone, reservation)``: the reservation a pool counts on, its
  status, machine type, ``count`` and ``inUseCount``;
* for Cloud TPU pools, the TPU API's accelerator types per zone instead of machine types
  (:mod:`gpufleet.clouds.gcp.tpu_preflight`), and the Cloud TPU service's quota per zone (Cloud
  Quotas API) and TPU reservations instead of regional GPU quota and Compute reservations
  (:mod:`gpufleet.clouds.gcp.tpu_quota`).

Credentials: ``google.auth.default()`` (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application
default credentials, GCE metadata). Off Google Cloud the metadata probe is answered "not here" at
once instead of waiting on its network timeouts. The project is the site's ``project`` or the
default credentials' project.

A training run on ``capacity.type: flex_start`` gets a warning whatever the credentials: Dynamic
Workload Scheduler is best-effort, not a reservation (the resize request waits until Compute Engine
finds the capacity; the VMs run at most the requested duration, 7 days at most, and are then deleted:
https://cloud.google.com/compute/docs/instance-groups/about-resize-requests-mig).

Only reads live here; :class:`gpufleet.preflight.judge.Judge` judges them, in the words of
``preflight.yaml``. Google's errors are mapped once, by :func:`classify`.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import replace
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gpufleet.clouds.gcp.profile import flex_start_run_s
from gpufleet.clouds.gcp.tpu_preflight import OFFERING_CHECK, TpuReads, tpu_client, tpu_generation
from gpufleet.clouds.gcp.tpu_quota import TpuQuotaReads, quotas_client
from gpufleet.plan import PoolPlan
from gpufleet.preflight import reads
from gpufleet.preflight.base import Finding, PreflightOptions, register
from gpufleet.preflight.judge import Judge
from gpufleet.spec import SiteSpec

SCOPES = ("https://www.googleapis.com/auth/compute.readonly", "https://www.googleapis.com/auth/cloud-platform")
"""Compute's read-only scope, and the one the Cloud Quotas API's ``quotaInfos.list`` requires."""

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
"""``(kind, credentials) -> client``; ``kind`` is ``machine_types``, ``regions``, ``reservations``, ``tpu``,
``quotas`` (Cloud Quotas) or ``tpu_reservations`` (the TPU API's ``v2alpha1``)."""

_RESERVATION_PATH = re.compile(
    r"(?:^|/)projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/reservations/(?P<name>[^/]+)$")


def _compute_v1() -> Any:
    with warnings.catch_warnings():
        # google-api-core warns at import time about its own Python support schedule; not ours to act on.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core\..*")
        from google.cloud import compute_v1
    return compute_v1


def classify(exc: BaseException) -> reads.Reason | None:
    """The :data:`~gpufleet.preflight.reads.Reason` of a Google error (``None``: not Google's).

    API errors by their HTTP meaning (``NotFound``; ``Unauthenticated`` / ``Forbidden``, the 403 a REST
    client raises and gRPC's ``PermissionDenied`` alike, and google-auth's errors; ``TooManyRequests`` / ``ResourceExhausted``), a ``RetryError`` (the retry
    deadline passed) by its last cause, transport errors of ``requests`` as ``unreachable``,
    anything else as ``failed``.
    """
    import requests
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import GoogleAuthError

    if isinstance(exc, gexc.RetryError):
        return classify(exc.cause) if exc.cause is not None else "failed"
    if isinstance(exc, gexc.NotFound):
        return "not_found"
    if isinstance(exc, (gexc.Unauthenticated, gexc.Forbidden, GoogleAuthError)):  # Forbidden: 403, PermissionDenied too
        return "auth"
    if isinstance(exc, (gexc.TooManyRequests, gexc.ResourceExhausted)):
        return "throttled"
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return "unreachable"
    return "failed" if isinstance(exc, (gexc.GoogleAPIError, requests.RequestException)) else None


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

    request: Any = None if _on_google_cloud() else _NoMetadataServer()
    found = reads.attempt(lambda: google.auth.default(scopes=list(SCOPES), request=request), classify)
    if isinstance(found, reads.ProviderError) and found.reason == "auth":
        first = str(found.cause).strip().splitlines()[0]
        return None, None, f"no Google credentials found (google.auth.default: {first})"
    if isinstance(found, reads.ProviderError):
        raise found
    credentials, project = found
    return credentials, project, None


FLEX_START_CHECK = "compute:instanceGroupManagerResizeRequests (Dynamic Workload Scheduler)"


def flex_start_notices(pools: Sequence[PoolPlan]) -> list[Finding]:
    """A warning per flex-start training pool (a MIG resize request, or GKE queued provisioning):
    best-effort capacity, not a reservation."""
    out = []
    for pool in pools:
        if pool.capacity_type != "flex_start":
            continue
        run_s = flex_start_run_s(pool)
        out.append(Finding(
            "gcp", "reservation", "warning", pool.site, (pool.name,), FLEX_START_CHECK,
            f"flex-start is best-effort, not a reservation: the request for {pool.nodes} x "
            f"{pool.instance_type} ({pool.gpus} GPUs) in {pool.zones[0]} waits until Dynamic Workload Scheduler "
            f"finds the capacity, with no start time promised; the VMs then run at most {run_s / 86_400:.2f} days "
            "and are deleted. For capacity held for you, use a reservation (capacity.type: reservation)",
            details={"requested_run_duration_s": run_s, "nodes": pool.nodes}))
    return out


@register
class GcpChecker(Judge, TpuReads, TpuQuotaReads):
    """GCP's reads through google-cloud-compute (see the module docstring for the calls)."""

    cloud = "gcp"
    quota_unit = "gpus"
    sdk = reads.Sdk(classify, loggers=("google.auth", "urllib3"))

    def check(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """The judge's checks, after the flex-start warnings (which need no API)."""
        return [*flex_start_notices([p for p in pools if p.cloud == self.cloud]), *super().check(pools, sites)]

    def __init__(self, options: PreflightOptions | None = None, *, credentials: Any = None,
                 project: str | None = None, client_factory: ClientFactory | None = None) -> None:
        super().__init__(options)
        self.credentials = credentials
        self.default_project = project
        self._factory: ClientFactory = client_factory or self.make_client
        self._clients: dict[str, Any] = {}

    def make_client(self, kind: str, credentials: Any) -> Any:
        """A REST client of google-cloud-compute (google-cloud-tpu's for ``tpu``, google-cloud-quotas' for
        ``quotas``; google-cloud-tpu's ``v2alpha1`` gRPC client for ``tpu_reservations``)."""
        if kind == "tpu":
            return tpu_client(credentials)
        if kind in ("quotas", "tpu_reservations"):
            return quotas_client(kind, credentials)
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

    # --- machine types: offerings and instance facts -------------------------------------------------

    def machine_type(self, project: str, zone: str, name: str) -> Any:
        """``MachineTypesClient.get`` (once per project, zone and name); ``None`` when the zone does
        not offer ``name`` (404)."""
        return self.remember(("machine_type", project, zone, name), lambda: self.find(
            self._client("machine_types").get, project=project, zone=zone, machine_type=name, **self._call_options()))

    def _found_in(self, site: SiteSpec, name: str, zones: Sequence[str]) -> list[tuple[str, Any]]:
        project = self.project_of(site) or ""
        return [(z, mt) for z in zones if (mt := self.machine_type(project, z, name)) is not None]

    def offerings(self, site: SiteSpec, instance_types: Sequence[str],
                  zones: Sequence[str]) -> dict[str, reads.Offering]:
        """Asks each of ``zones`` for each type: a zone's list is not read, so only these are known."""
        offerings: dict[str, reads.Offering] = {}
        for name in instance_types:
            if tpu_generation(name):
                offerings[name] = self.tpu_offering(site, name, zones)
                continue
            found = frozenset(z for z, _ in self._found_in(site, name, zones))
            offerings[name] = reads.Offering(name, found, listed=bool(found), lists_region=False)
        return offerings

    def _judge_offering(self, site: SiteSpec, pool: PoolPlan, offering: reads.Offering,
                        sites: Sequence[SiteSpec]) -> Finding:
        """A TPU pool's offering in the TPU API's terms: its generation listed per zone, and its own slice."""
        found = super()._judge_offering(site, pool, offering, sites)
        if not tpu_generation(pool.instance_type):
            return found
        message = found.message.replace("(machineTypes.get: 404 Not Found)",
                                        "(acceleratorTypes.list lists no slice of it there)")
        missing = self.tpu_slice_missing(site, pool) if found.severity == "ok" else []
        if missing:
            nodes = sum(pool.nodes_by_zone.get(z, 0) for z in missing)
            return replace(found, severity="error", check=OFFERING_CHECK, shortfall_gpus=nodes * pool.gpus_per_node,
                           message=f"{pool.instance_type} is offered in {', '.join(missing)} but its "
                                   f"{pool.topology} slice is not (acceleratorTypes.list); {nodes} nodes "
                                   f"({nodes * pool.gpus_per_node} chips) are planned there")
        return replace(found, check=OFFERING_CHECK, message=message)

    def _any_machine_type(self, site: SiteSpec, name: str, zones: Sequence[str]) -> Any:
        project = self.project_of(site) or ""
        return next((mt for z in zones if (mt := self.machine_type(project, z, name)) is not None), None)

    def instance_facts(self, site: SiteSpec, wanted: Mapping[str, Sequence[str]]) -> dict[str, reads.InstanceFacts]:
        facts: dict[str, reads.InstanceFacts] = {}
        for name, zones in wanted.items():
            if tpu_generation(name):  # the TPU API states no chips or vCPUs per VM to compare
                continue
            mt = self._any_machine_type(site, name, zones)
            if mt is not None:
                facts[name] = reads.InstanceFacts(
                    gpus=sum(int(a.guest_accelerator_count) for a in mt.accelerators), vcpus=int(mt.guest_cpus),
                    accelerators=tuple(str(a.guest_accelerator_type) for a in mt.accelerators))
        return facts

    # --- quotas --------------------------------------------------------------------------------------

    def check_quotas(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Regional GPU quota for GPU pools (the judge's); the Cloud TPU service's per-zone quota for TPU pools."""
        tpu: list[PoolPlan] = []
        gpu: list[PoolPlan] = []
        for pool in pools:
            (tpu if tpu_generation(pool.instance_type) else gpu).append(pool)
        return [*super().check_quotas(gpu, sites),
                *self.check_tpu_quotas(tpu, sites, tpu_generation)]

    def check_reservations(self, site: SiteSpec, pools: Sequence[PoolPlan]) -> list[Finding]:
        """Compute reservations for GPU pools and GKE TPU node pools (the judge's: a GKE TPU reservation is a
        Compute Engine reservation of the TPU machine type); the TPU API's reservations for TPU VM pools."""
        tpu = [p for p in pools if tpu_generation(p.instance_type) and p.platform != "kubernetes"]
        return [*super().check_reservations(site, [p for p in pools if p not in tpu]),
                *self.check_tpu_reservations(site, tpu, tpu_generation)]

    def quotas_of(self, site: SiteSpec, pool: PoolPlan) -> tuple[reads.Quota, ...] | reads.UnknownQuota:
        """The regional GPU metric of the pool's accelerator (read from its machine type in the
        pool's zones, else the site's); TPU pools are judged by :meth:`check_quotas`, not here."""
        mt = self._any_machine_type(site, pool.instance_type, pool.zones)
        if mt is None:
            mt = self._any_machine_type(site, pool.instance_type, site.zones)
        if mt is None or not mt.accelerators:
            return ()
        accel = str(mt.accelerators[0].guest_accelerator_type)
        metric = GPU_QUOTA_METRICS.get(accel)
        if metric is None:
            return reads.UnknownQuota(f"no regional quota metric is known for accelerator {accel}; "
                                      "check its quota by hand")
        return (reads.Quota(metric, metric),)

    def quota_scope(self, site: SiteSpec) -> str:
        return f"{self.project_of(site) or ''}/{site.region}"

    def region_quotas(self, project: str, region: str) -> dict[str, reads.QuotaRoom]:
        """``RegionsClient.get`` -> metric -> its limit and usage, in GPUs."""
        def read() -> dict[str, reads.QuotaRoom]:
            found = self._client("regions").get(project=project, region=region, **self._call_options())
            return {str(q.metric): reads.QuotaRoom(limit=float(q.limit), used=float(q.usage)) for q in found.quotas}

        return self.remember(("region", project, region), read)

    def quota_room(self, site: SiteSpec, quota: reads.Quota) -> reads.QuotaRoom | None:
        return self.region_quotas(self.project_of(site) or "", site.region).get(quota.key)

    # --- reservations --------------------------------------------------------------------------------

    def reservation_ref(self, site: SiteSpec, pool: PoolPlan) -> reads.ReservationRef:
        """A reservation name, searched in the pool's zones, or ``projects/P/zones/Z/reservations/N``."""
        rid = pool.reservation_id or ""
        match = _RESERVATION_PATH.search(rid)
        project = match.group("project") if match else (self.project_of(site) or "")
        zones = [match.group("zone")] if match else list(pool.zones)
        name = match.group("name") if match else rid
        return reads.ReservationRef(id=name, name=name, what=f"reservation {name}",
                                    searched=f"in {', '.join(zones)} of project {project}",
                                    locator=(project, name, *zones))

    def reservation(self, site: SiteSpec, pool: PoolPlan, ref: reads.ReservationRef) -> reads.Reservation | None:
        project, name, *zones = ref.locator
        client = self._client("reservations")
        found = next((r for z in zones if (r := self.find(client.get, project=project, zone=z, reservation=name,
                                                                **self._call_options())) is not None), None)
        if found is None:
            return None
        specific = found.specific_reservation
        room = int(specific.count) - int(specific.in_use_count)
        zone = str(found.zone).rsplit("/", 1)[-1]
        status = str(found.status)
        machine_type = str(specific.instance_properties.machine_type).rsplit("/", 1)[-1]
        return reads.Reservation(id=name, instance_type=machine_type, zone=zone, state=status, ready=status == "READY",
                                 room=room, total=int(specific.count),
                                 details={"zone": zone, "room_vms": room, "status": status})

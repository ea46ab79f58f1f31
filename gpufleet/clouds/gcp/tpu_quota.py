"""Cloud TPU quota and TPU reservations in GCP preflight: the Cloud TPU API's own quotas per zone,
read through the Cloud Quotas API, and the TPU API's reservations.

What Google documents, and what this module does with it:

* **Quota per TPU version and type.** Cloud TPU has separate quotas for each TPU version and, within
  a version, for reserved, on-demand and preemptible (spot) resources; a TPU created through the
  Cloud TPU API draws on the Cloud TPU service's quota (``tpu.googleapis.com``), while TPU slice
  node pools in GKE draw on Compute Engine API quota (``compute.googleapis.com``) instead
  (https://cloud.google.com/tpu/docs/quota, https://cloud.google.com/kubernetes-engine/docs/troubleshooting/tpus).
  On-demand TPUs use on-demand quota; Spot TPUs and flex-start queued resources use preemptible
  quota (https://cloud.google.com/tpu/docs/plan-tpus, https://cloud.google.com/tpu/docs/request-using-flex-start).
  A GKE TPU pool's quota is reported as not checked here (its Compute Engine quota names are not
  verified), never as a pass.
* **The unit.** For TPU v4 and later the quota is in chips or TensorCores (the quota page). v5e and
  v6e chips have one TensorCore each, v5p chips two
  (https://cloud.google.com/tpu/docs/system-architecture-tpu-vm), so only v5p is ambiguous: its
  quota passes only if it covers the plan counted in TensorCores, blocks only if it is short even
  counted in chips, and is reported as not checked in between.
* **v5e serving.** v5e VMs for inference (``v5litepod-1/-4/-8``) draw on the serving quota types
  ``tpu-v5s-litepod-serving`` (and ``-preemptible``, ``-reserved``) (the quota page), whose Cloud
  Quotas ids are not verified: a v5e inference pool's quota is reported as not checked.
* **The read.** ``CloudQuotasClient.list_quota_infos(parent=projects/P/locations/global/services/
  tpu.googleapis.com)`` (google-cloud-quotas, REST; IAM permission ``cloudquotas.quotas.get`` on
  the project: https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.services.quotaInfos/list;
  Google's role for viewing quotas is Quota Viewer, ``roles/servicemanagement.quotaViewer``:
  https://cloud.google.com/docs/quotas/view-manage).
  Each ``QuotaInfo`` has a ``quota_id`` and ``dimensions_infos``: the value in force
  (``details.value``) per dimension map (``{"zone": "us-east5-a"}``), a map without the dimension
  standing for every other location in its ``applicable_locations``. The chips of the pools sharing a
  zone are held against the zone's value, and those sharing a region against the region's
  (:data:`TPU_QUOTA_IDS`). A ``QuotaInfo`` states the
  limit only, not what is already used (usage is a Cloud Monitoring metric:
  https://cloud.google.com/docs/quotas/implement-common-use-cases): findings say so.
* **The quota ids** (:data:`TPU_QUOTA_IDS`) are the ones the Cloud TPU API names in its own
  ``RESOURCE_EXHAUSTED`` answers (``Quota 'TPUV5PPerProjectPerZoneForTPUAPI' exhausted. Limit 8 in
  zone us-central1-a``); Google's quota page names the quota types, not their ids. So the read
  confirms each id in the service's own list: an id the project's list lacks is reported as not
  checked, naming the ids the service does list for that generation, never as a pass.
* **TPU reservations.** A reserved TPU pool is built with ``scheduling_config.reserved`` (the TPU
  API's reserved capacity, ``--reserved``; the quota page). Its ``reservation_id`` is looked up with
  the TPU API's ``projects.locations.reservations.list`` (``v2alpha1``, google-cloud-tpu's
  ``tpu_v2alpha1.TpuClient.list_reservations``, over gRPC: https://cloud.google.com/tpu/docs/reference/rest):
  it must exist in the pool's zone, be ``ACTIVE`` and have room (``standard.size`` less
  ``standard.usage.total``, in its ``capacity_units``, chips or TensorCores) for the pool's chips
  there. Reserved pools draw on no on-demand or preemptible quota here. A reserved TPU node pool in
  GKE consumes a Compute Engine reservation of its TPU machine type instead: the GCP checker judges
  it as it judges GPU reservations.

Errors are google-api-core's, mapped by :func:`gpufleet.clouds.gcp.preflight.classify`: a read that
fails is an ``api_error`` finding (not checked, exit 4), never a pass.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from gpufleet.plan import PoolPlan
from gpufleet.preflight.base import Finding, api_error, fmt_int
from gpufleet.preflight.reads import ProviderError
from gpufleet.spec import SiteSpec

SERVICE = "tpu.googleapis.com"
QUOTA_CHECK = f"cloudquotas:quotaInfos.list ({SERVICE})"
RESERVATION_CHECK = "tpu:reservations.list (v2alpha1)"
GKE_QUOTA_CHECK = "compute.googleapis.com TPU quota (GKE)"

TPU_QUOTA_IDS: dict[tuple[str, str], dict[str, str]] = {
    ("v5e", "on_demand"): {"zone": "TPUV5sLitepodPerProjectPerZoneForTPUAPI",
                           "region": "TPUV5sLitepodPerProjectPerRegionForTPUAPI"},
    ("v5e", "preemptible"): {"zone": "TPUV5sPreemptibleLitepodPerProjectPerZoneForTPUAPI",
                             "region": "TPUV5sPreemptibleLitepodPerProjectPerRegionForTPUAPI"},
    ("v5p", "on_demand"): {"zone": "TPUV5PPerProjectPerZoneForTPUAPI", "region": "TPUV5PPerProjectPerRegionForTPUAPI"},
    ("v5p", "preemptible"): {"zone": "TPUV5PPreemptiblePerProjectPerZoneForTPUAPI",
                             "region": "TPUV5PPreemptiblePerProjectPerRegionForTPUAPI"},
    ("v6e", "on_demand"): {"zone": "TPUV6EPerProjectPerZoneForTPUAPI", "region": "TPUV6EPerProjectPerRegionForTPUAPI"},
    ("v6e", "preemptible"): {"zone": "TPUV6EPreemptiblePerProjectPerZoneForTPUAPI",
                             "region": "TPUV6EPreemptiblePerProjectPerRegionForTPUAPI"},
}
"""(TPU generation, quota type) -> the Cloud TPU service's quota id per zone and per region (see the
module docstring for where the ids come from and how each is confirmed before it is used). The
service names the regional id beside the zonal one when both are exceeded (``Quota limit
'TPUV2sPodPerProjectPerRegionForTPUAPI,TPUV2sPodPerProjectPerZoneForTPUAPI'``): pools in several
zones of a region may each fit their zone and still exceed the region. A regional id the project's
list lacks is not judged (the zonal finding stands alone), never passed."""

DIMENSIONS = ("zone", "region")
"""Where the Cloud TPU quotas are counted."""

TENSORCORES_PER_CHIP: dict[str, int] = {"v5e": 1, "v5p": 2, "v6e": 1}
"""TensorCores per chip (https://cloud.google.com/tpu/docs/system-architecture-tpu-vm)."""

V5E_SERVING_QUOTA = "tpu-v5s-litepod-serving"
"""The quota type v5e VMs for inference draw on (https://cloud.google.com/tpu/docs/quota)."""


def quotas_client(kind: str, credentials: Any) -> Any:
    """google-cloud-quotas' ``CloudQuotasClient`` on REST (``quotas``) or google-cloud-tpu's
    ``tpu_v2alpha1.TpuClient`` (``tpu_reservations``; gRPC, the one transport ``v2alpha1`` ships),
    imported here (preflight's optional dependencies)."""
    with warnings.catch_warnings():
        # google-api-core warns at import time about its own Python support schedule; not ours to act on.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core\..*")
        if kind == "quotas":
            from google.cloud import cloudquotas_v1

            return cloudquotas_v1.CloudQuotasClient(credentials=credentials, transport="rest")
        from google.cloud import tpu_v2alpha1

        return tpu_v2alpha1.TpuClient(credentials=credentials)


def quota_shares(pool: PoolPlan) -> dict[str, dict[str, int]]:
    """The pool's nodes per zone by the Cloud TPU quota type they draw on: ``on_demand``, and
    ``preemptible`` for Spot TPU VMs (the plan's ``spot_nodes_by_zone``) and flex-start queued
    resources; nothing for a reserved pool (checked against its reservation instead)."""
    if pool.capacity_type == "reservation":
        return {}
    if pool.capacity_type == "flex_start":
        return {"preemptible": dict(pool.nodes_by_zone)}
    spot = pool.spot_nodes_by_zone
    shares = {"on_demand": {z: n - spot.get(z, 0) for z, n in pool.nodes_by_zone.items()}, "preemptible": dict(spot)}
    return {kind: by_zone for kind, by_zone in shares.items() if any(by_zone.values())}


def dimension_value(info: Any, dimension: str, place: str) -> int | None:
    """The quota's value in force in ``place`` (a zone or a region, as ``dimension`` says): the dimensions
    info naming it, else one without that dimension that applies there; None when the quota states none."""
    general = None
    for dims in info.dimensions_infos:
        named = dict(dims.dimensions).get(dimension)
        if named == place:
            return int(dims.details.value)
        locations = list(dims.applicable_locations)
        if named is None and general is None and (not locations or place in locations or "global" in locations):
            general = int(dims.details.value)
    return general


@dataclass(frozen=True)
class Draw:
    """The chips one pool plans in one place (a zone, or the region for a regional quota)."""

    pool: PoolPlan
    place: str
    chips: int


def draws(pool: PoolPlan, dimension: str = "zone", nodes_by_zone: Mapping[str, int] | None = None) -> list[Draw]:
    """The pool's chips per zone (its nodes there times the chips per node), or in its region;
    ``nodes_by_zone``: a share of its nodes (default: all of them)."""
    by_zone = pool.nodes_by_zone if nodes_by_zone is None else nodes_by_zone
    if dimension == "region":
        chips = sum(by_zone.values()) * pool.gpus_per_node
        return [Draw(pool, pool.region, chips)] if chips else []
    return [Draw(pool, z, n * pool.gpus_per_node) for z, n in sorted(by_zone.items()) if n]


class TpuQuotaReads:
    """The TPU quota and reservation checks a :class:`~gpufleet.clouds.gcp.preflight.GcpChecker` mixes in."""

    cloud: ClassVar[str]
    remember: Callable[..., Any]
    attempt: Callable[..., Any]
    _client: Callable[[str], Any]
    _call_options: Callable[[], dict[str, Any]]
    project_of: Callable[[SiteSpec], str | None]

    # --- reads ---------------------------------------------------------------------------------------

    def tpu_quota_infos(self, project: str) -> Mapping[str, Any]:
        """The Cloud TPU service's quotas in ``project``: quota id -> ``QuotaInfo`` (once per project)."""
        def read() -> dict[str, Any]:
            pages = self._client("quotas").list_quota_infos(
                parent=f"projects/{project}/locations/global/services/{SERVICE}", **self._call_options())
            return {str(info.quota_id): info for info in pages}

        result: dict[str, Any] = self.remember(("tpu_quota_infos", project), read)
        return result

    def tpu_reservations(self, project: str, zone: str) -> list[Any]:
        """The TPU API's reservations in ``zone`` (once per project and zone)."""
        def read() -> list[Any]:
            return list(self._client("tpu_reservations").list_reservations(
                parent=f"projects/{project}/locations/{zone}", **self._call_options()))

        result: list[Any] = self.remember(("tpu_reservations", project, zone), read)
        return result

    # --- quota ---------------------------------------------------------------------------------------

    def check_tpu_quotas(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec],
                         generation: Callable[[str], str | None]) -> list[Finding]:
        """The TPU pools' chips per zone (and per region), generation and quota type, summed over the pools
        sharing them, against the Cloud TPU service's per-zone (and per-region) quota."""
        by_site = {s.name: s for s in sites}
        findings: list[Finding] = []
        groups: dict[tuple[str, str, str, str, str], list[Draw]] = {}
        for pool in pools:
            gen = generation(pool.instance_type) or ""
            if pool.site not in by_site:
                continue
            project = self.project_of(by_site[pool.site]) or ""
            for kind, by_zone in quota_shares(pool).items():
                why = self._unchecked_tpu_quota(pool, gen, kind)
                if why:
                    findings.append(Finding(self.cloud, "quota", "unknown", pool.site, (pool.name,), why[0], why[1]))
                    continue
                for dimension in DIMENSIONS:
                    for draw in draws(pool, dimension, by_zone):
                        groups.setdefault((project, dimension, draw.place, gen, kind), []).append(draw)
        failed: dict[str, tuple[ProviderError, dict[str, PoolPlan]]] = {}  # one finding per project whose read failed
        for (project, dimension, place, gen, kind), group in sorted(groups.items(), key=lambda g: g[0][1] == "region"):
            infos = self.attempt(lambda: self.tpu_quota_infos(project))
            if isinstance(infos, ProviderError):
                failed.setdefault(project, (infos, {}))[1].update((d.pool.name, d.pool) for d in group)
                continue
            found = self._judge_tpu_quota(project, dimension, place, gen, kind, group, infos)
            findings += [found] if found else []
        for project, (err, stuck) in failed.items():
            findings.append(api_error(self.cloud, ",".join(sorted({p.site for p in stuck.values()})),
                                      list(stuck.values()), QUOTA_CHECK, err, f"the Cloud TPU quota of project {project}"))
        return findings

    @staticmethod
    def _unchecked_tpu_quota(pool: PoolPlan, gen: str, kind: str) -> tuple[str, str] | None:
        """``(check, why)`` when the pool's quota is not one this module reads."""
        chips = f"the plan needs {pool.gpus} {gen} chips in {', '.join(pool.zones)}"
        if pool.platform == "kubernetes":
            return GKE_QUOTA_CHECK, (
                f"a TPU node pool in GKE draws on Compute Engine API quota (compute.googleapis.com), not the Cloud TPU "
                f"service's: check the {gen} {kind.replace('_', '-')} TPU quota of {pool.region} in the Compute Engine "
                f"API's quotas by hand; {chips}")
        if gen == "v5e" and pool.role == "inference":
            return QUOTA_CHECK, (
                f"v5e VMs for inference draw on the Cloud TPU serving quota {V5E_SERVING_QUOTA}"
                f"{'-preemptible' if kind == 'preemptible' else ''}, whose Cloud Quotas id preflight does not know: "
                f"check it by hand; {chips}")
        if (gen, kind) not in TPU_QUOTA_IDS:
            return QUOTA_CHECK, (f"no Cloud TPU quota id is known for {gen or pool.instance_type} ({kind}): check its "
                                 f"{kind.replace('_', '-')} quota by hand; {chips}")
        return None

    def _judge_tpu_quota(self, project: str, dimension: str, zone: str, gen: str, kind: str, group: list[Draw],
                         infos: Mapping[str, Any]) -> Finding | None:
        """One quota in one place (``zone`` is a zone, or the region when ``dimension`` is ``region``)."""
        quota_id = TPU_QUOTA_IDS[(gen, kind)][dimension]
        pools = tuple(dict.fromkeys(d.pool.name for d in group))
        site = ",".join(sorted({d.pool.site for d in group}))
        need = sum(d.chips for d in group)
        parts = ", ".join(f"{d.pool.name} {d.chips}" for d in group)
        words = f"{quota_id} ({gen} {kind.replace('_', '-')}) in {zone}"
        details: dict[str, Any] = {dimension: zone, "generation": gen, "quota_type": kind, "quota_id": quota_id,
                                   "needed_chips": need, "usage_known": False}
        info = infos.get(quota_id)
        if info is None and dimension == "region":
            return None  # see TPU_QUOTA_IDS
        if info is None:
            listed = sorted(q for q in infos if gen.upper() in q.upper())
            return Finding(self.cloud, "quota", "unknown", site, pools, QUOTA_CHECK,
                           f"the Cloud TPU service lists no quota {quota_id} in project {project} (it lists "
                           f"{', '.join(listed) or f'no {gen} quota'}): check the {gen} {kind.replace('_', '-')} "
                           f"quota of {zone} by hand; the plan needs {need} chips there", details=details)
        limit = dimension_value(info, dimension, zone)
        if limit is None or limit < 0:
            said = "no value" if limit is None else f"the value {limit}"
            return Finding(self.cloud, "quota", "unknown", site, pools, QUOTA_CHECK,
                           f"{words}: Cloud Quotas states {said} for the {dimension}; check it by hand; the plan needs "
                           f"{need} chips there ({parts})", details=details)
        cores = TENSORCORES_PER_CHIP.get(gen, 1)
        details["limit"] = limit
        usage = f"Cloud Quotas states the limit, not the usage: TPUs already running in {zone} count against it too"
        if cores > 1 and need <= limit < need * cores:
            details["needed_tensorcores"] = need * cores
            return Finding(self.cloud, "quota", "unknown", site, pools, QUOTA_CHECK,
                           f"{words}: the limit is {fmt_int(limit)}; the plan needs {need} chips ({parts}) = "
                           f"{need * cores} TensorCores, and Cloud TPU counts {gen} quota in chips or TensorCores: "
                           f"check which this quota counts", details=details)
        if need * cores <= limit:
            return Finding(self.cloud, "quota", "ok", site, pools, QUOTA_CHECK,
                           f"{words}: the plan needs {need} chips ({parts}), the quota allows {fmt_int(limit)}; "
                           f"{usage}", details=details)
        request = f"{need} chips" if cores == 1 else f"{need * cores} TensorCores ({need} if it counts chips)"
        per_node = max(d.pool.gpus_per_node for d in group)
        short = math.ceil((need - limit) / per_node) * per_node
        return Finding(self.cloud, "quota", "error", site, pools, QUOTA_CHECK,
                       f"{words}: the quota allows {fmt_int(limit)}, the plan needs {need} chips ({parts}): short by "
                       f"{need - limit} chips. Request at least {request} (plus what already runs in {zone}) for "
                       "this quota, or move capacity", shortfall_gpus=short, details=details)

    # --- reservations --------------------------------------------------------------------------------

    def check_tpu_reservations(self, site: SiteSpec, pools: Sequence[PoolPlan],
                               generation: Callable[[str], str | None]) -> list[Finding]:
        """Each reserved TPU pool's reservation in each of its zones: exists, ACTIVE, room for its chips."""
        project = self.project_of(site) or ""
        findings: list[Finding] = []
        for pool in pools:
            if pool.capacity_type != "reservation" or not pool.reservation_id:
                continue
            for draw in draws(pool):
                found = self.attempt(lambda: self.tpu_reservations(project, draw.place))
                if isinstance(found, ProviderError):
                    findings.append(api_error(self.cloud, site.name, [pool], RESERVATION_CHECK, found,
                                              f"TPU reservation {pool.reservation_id} in {draw.place}"))
                    continue
                findings.append(self._judge_tpu_reservation(site, pool, draw, found, generation(pool.instance_type)))
        return findings

    def _judge_tpu_reservation(self, site: SiteSpec, pool: PoolPlan, draw: Draw, found: Sequence[Any],
                               gen: str | None) -> Finding:
        rid = str(pool.reservation_id)
        name = rid.rsplit("/", 1)[-1]
        match = next((r for r in found if str(r.name).rsplit("/", 1)[-1] == name), None)
        head = f"TPU reservation {name} in {draw.place}"
        if match is None:
            listed = ", ".join(sorted(str(r.name).rsplit("/", 1)[-1] for r in found)) or "none"
            return Finding(self.cloud, "reservation", "error", site.name, (pool.name,), RESERVATION_CHECK,
                           f"{head} does not exist (the TPU API lists {listed} there); {draw.chips} {gen} chips of "
                           f"{pool.name} count on it", shortfall_gpus=draw.chips,
                           details={"reservation_id": rid, "zone": draw.place})
        standard = match.standard
        units = standard.capacity_units.name if standard.capacity_units else "CAPACITY_UNITS_UNSPECIFIED"
        state = match.state.name if match.state else "STATE_UNSPECIFIED"
        per_chip = TENSORCORES_PER_CHIP.get(gen or "", 1) if units == "CORES" else 1
        size, used = int(standard.size), int(standard.usage.total)
        room_chips = (size - used) // per_chip
        details = {"reservation_id": rid, "zone": draw.place, "state": state, "capacity_units": units, "size": size,
                   "used": used, "needed_chips": draw.chips, "resource_type": str(standard.resource_type)}
        problems = []
        if state != "ACTIVE":
            problems.append(f"its state is {state}, not ACTIVE")
        if units not in ("CHIPS", "CORES"):
            return Finding(self.cloud, "reservation", "unknown", site.name, (pool.name,), RESERVATION_CHECK,
                           f"{head} states its size in {units}: its room for {draw.chips} chips cannot be judged",
                           details=details)
        if room_chips < draw.chips:
            problems.append(f"it has room for {room_chips} chips ({size - used} of {size} {units.lower()} free), "
                            f"{pool.name} needs {draw.chips}")
        if problems:
            short = draw.chips - (0 if state != "ACTIVE" else max(room_chips, 0))
            return Finding(self.cloud, "reservation", "error", site.name, (pool.name,), RESERVATION_CHECK,
                           f"{head} cannot carry {pool.name}: {'; '.join(problems)}", shortfall_gpus=min(short, draw.chips),
                           details=details)
        return Finding(self.cloud, "reservation", "ok", site.name, (pool.name,), RESERVATION_CHECK,
                       f"{head} is ACTIVE with room for {room_chips} chips ({size - used} of {size} {units.lower()} "
                       f"free); {pool.name} needs {draw.chips}", details=details)

"""Azure preflight reads through azure-mgmt-compute: resource SKUs, vCPU quotas, capacity reservations.

Calls, per subscription and region the plan uses (retried by azure-core's RetryPolicy on 408, 429
and 5xx, honouring ``Retry-After``):

* ``resource_skus.list(filter="location eq '<region>'")`` (GET ``.../providers/Microsoft.Compute/skus``):
  the sizes of the region, their zones, restrictions for the subscription (``Location``: the whole
  region; ``Zone``: some zones), ``vCPUs`` and ``GPUs`` capabilities and ``family`` (the quota);
* ``usage.list(location)`` (GET ``.../locations/<region>/usages``): ``currentValue`` and ``limit``
  of the family (``standardNDSH100v5Family``…) and of ``cores`` (total regional vCPUs);
* ``capacity_reservations.list_by_capacity_reservation_group``: the reservations of the group a
  pool counts on, and their room for its size in its zones.

Credentials: ``DefaultAzureCredential`` without the sources that can hang or prompt (managed
identity unless ``AZURE_CLIENT_ID`` / ``IDENTITY_ENDPOINT`` / ``MSI_ENDPOINT`` say it exists, VS
Code, the shared token cache, the browser), probed once for an ARM token. The subscription is the
site's ``subscription_id`` or ``AZURE_SUBSCRIPTION_ID``.

Only reads live here; :class:`gpufleet.preflight.judge.Judge` judges them, in the words of
``preflight.yaml``. azure-core's errors are mapped once, by :func:`classify`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpufleet.clouds.azure.profile import resource_group
from gpufleet.plan import PoolPlan
from gpufleet.preflight import reads
from gpufleet.preflight.base import PreflightOptions, register
from gpufleet.preflight.judge import Judge
from gpufleet.spec import SiteSpec

ARM_SCOPE = "https://management.azure.com/.default"
TOTAL_CORES = reads.Quota("cores", "Total Regional vCPUs", total=True)
"""``usage.list``'s "Total Regional vCPUs" quota, which every size also draws on."""

ClientFactory = Callable[[Any, str], Any]
"""``(credential, subscription_id) -> ComputeManagementClient``."""

_GROUP_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute/"
    r"capacityReservationGroups/(?P<name>[^/]+)$", re.IGNORECASE)


def classify(exc: BaseException) -> reads.Reason | None:
    """The :data:`~gpufleet.preflight.reads.Reason` of an azure-core error (``None``: not azure-core's).

    HTTP errors after the RetryPolicy by status (404 ``not_found``, 401/403 ``auth``, 429
    ``throttled``), failed requests (no connection, timeouts) as ``unreachable``, anything else
    azure-core raises as ``failed``.
    """
    from azure.core import exceptions as aexc

    if isinstance(exc, aexc.ResourceNotFoundError):
        return "not_found"
    if isinstance(exc, aexc.ClientAuthenticationError):
        return "auth"
    if isinstance(exc, aexc.HttpResponseError):
        status = getattr(exc, "status_code", None)
        return "auth" if status == 403 else "throttled" if status == 429 else "failed"
    if isinstance(exc, (aexc.ServiceRequestError, aexc.ServiceResponseError)):
        return "unreachable"
    return "failed" if isinstance(exc, aexc.AzureError) else None


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

    def offering(self) -> reads.Offering:
        zones = frozenset() if self.location_restriction else frozenset(self.zones)
        return reads.Offering(self.name, zones, listed=True, lists_region=True,
                              restricted_zones=frozenset(self.restricted_zones), refused=self.location_restriction)


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
    from azure.identity import DefaultAzureCredential

    managed = any(os.environ.get(v) for v in ("AZURE_CLIENT_ID", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"))
    credential = DefaultAzureCredential(
        exclude_managed_identity_credential=not managed,
        exclude_visual_studio_code_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_interactive_browser_credential=True,
        process_timeout=10,
    )
    token = reads.attempt(lambda: credential.get_token(ARM_SCOPE), classify)
    if isinstance(token, reads.ProviderError) and token.reason == "auth":
        text = str(token.cause).strip()
        first = text.splitlines()[0] if text else type(token.cause).__name__
        return None, ("no Azure credentials found (environment, workload identity, Azure CLI, Azure Developer "
                      f"CLI, PowerShell{', managed identity' if managed else ''}): {first}")
    if isinstance(token, reads.ProviderError):
        raise token
    return credential, None


@register
class AzureChecker(Judge):
    """Azure's reads through azure-mgmt-compute (see the module docstring for the calls)."""

    cloud = "azure"
    sdk = reads.Sdk(classify, loggers=("azure", "urllib3"))

    def __init__(self, options: PreflightOptions | None = None, *, credential: Any = None,
                 client_factory: ClientFactory | None = None) -> None:
        super().__init__(options)
        self.credential = credential
        self._factory: ClientFactory = client_factory or self.make_client
        self._clients: dict[str, Any] = {}

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

    def credentials_problem(self) -> str | None:
        if self.credential is None:
            self.credential, problem = detect_credential()
            return problem
        return None

    def site_unusable(self, site: SiteSpec) -> tuple[str, str] | None:
        if self.subscription_of(site) is None:
            return "subscription", f"site {site.name} has no subscription_id and AZURE_SUBSCRIPTION_ID is unset"
        return None

    # --- SKUs: offerings and instance facts -------------------------------------------------------------

    def skus(self, site: SiteSpec) -> dict[str, SkuFacts]:
        """VM sizes of the site's region, as ``resource_skus.list`` reports them for the subscription
        (asked once per subscription and region, a failure included)."""
        sub = self.subscription_of(site) or ""

        def read() -> dict[str, SkuFacts]:
            listing = self._client(sub).resource_skus.list(filter=f"location eq '{site.region}'")
            return {str(s.name): sku_facts(s, site.region) for s in listing
                    if str(s.resource_type or "") == "virtualMachines"}

        return self.remember(("skus", sub, site.region.lower()), read)

    def offerings(self, site: SiteSpec, instance_types: Sequence[str],
                  zones: Sequence[str]) -> dict[str, reads.Offering]:
        skus = self.skus(site)
        unlisted = reads.Offering("", frozenset(), listed=False, lists_region=True)
        return {t: skus[t].offering() if t in skus else unlisted for t in instance_types}

    def instance_facts(self, site: SiteSpec, wanted: Mapping[str, Sequence[str]]) -> dict[str, reads.InstanceFacts]:
        skus = self.skus(site)
        return {t: reads.InstanceFacts(gpus=skus[t].gpus, vcpus=skus[t].vcpus) for t in wanted if t in skus}

    # --- quotas --------------------------------------------------------------------------------------

    def quotas_of(self, site: SiteSpec, pool: PoolPlan) -> tuple[reads.Quota, ...]:
        """The size's family quota and the regional total (none when the size has no family here)."""
        sku = self.skus(site).get(pool.instance_type)
        return (reads.Quota(sku.family, sku.family), TOTAL_CORES) if sku is not None and sku.family else ()

    def quota_scope(self, site: SiteSpec) -> str:
        return f"{self.subscription_of(site) or ''}/{site.region.lower()}"

    def usage(self, site: SiteSpec) -> dict[str, reads.QuotaRoom]:
        """``usage.list``: quota name (lower case) -> its limit and current use, in vCPUs."""
        sub = self.subscription_of(site) or ""
        return self.remember(("usage", sub, site.region.lower()), lambda: {
            str(u.name.value).lower(): reads.QuotaRoom(limit=float(u.limit), used=float(u.current_value))
            for u in self._client(sub).usage.list(site.region)})

    def quota_room(self, site: SiteSpec, quota: reads.Quota) -> reads.QuotaRoom | None:
        return self.usage(site).get(quota.key.lower())

    # --- capacity reservation groups -----------------------------------------------------------------

    def reservation_ref(self, site: SiteSpec, pool: PoolPlan) -> reads.ReservationRef:
        """A full capacity reservation group id, or a group name in the site's resource group."""
        rid = pool.reservation_id or ""
        match = _GROUP_ID.match(rid)
        sub = match.group("sub") if match else (self.subscription_of(site) or "")
        rg = match.group("rg") if match else resource_group(site)
        group = match.group("name") if match else rid
        return reads.ReservationRef(id=rid, name=group, what=f"reservation group {rid}",
                                    searched=f"in resource group {rg} (or this identity cannot read it)",
                                    locator=(sub, rg, group))

    def reservation(self, site: SiteSpec, pool: PoolPlan, ref: reads.ReservationRef) -> reads.Reservation | None:
        """The group's room for the pool's size in its zones: reservations of that size that
        succeeded, in one of its zones (or zone-less), less the VMs already associated."""
        sub, rg, group = ref.locator
        items = self.find(lambda: list(self._client(sub).capacity_reservations.list_by_capacity_reservation_group(
            rg, group)))
        if items is None:
            return None
        room = 0
        for item in items:
            props = item.properties
            state = str(getattr(props, "provisioning_state", "") or "")
            zones = [str(z) for z in (item.zones or [])]
            if str(item.sku.name) != pool.instance_type or state not in ("Succeeded", ""):
                continue
            if zones and not set(zones) & set(pool.zones):
                continue
            used = len(getattr(props, "virtual_machines_associated", None) or [])
            room += max(0, int(item.sku.capacity or 0) - used)
        return reads.Reservation(id=ref.id, instance_type=pool.instance_type, zone=None, state="Succeeded",
                                 ready=True, room=room, details={"room_vms": room})

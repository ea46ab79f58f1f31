"""AWS preflight reads through boto3: EC2 offerings and instance facts, Service Quotas, capacity reservations.

Calls, per region the plan uses (every call retried by botocore's ``standard`` retry mode):

* ``ec2:DescribeInstanceTypeOfferings`` (``LocationType=availability-zone``, filtered by instance
  type), once per region for every catalog type: the Availability Zones that offer each type;
* ``ec2:DescribeInstanceTypes``: GPU model, count and memory, vCPUs and ``MaximumEfaInterfaces``;
* ``service-quotas:GetServiceQuota`` (``ServiceCode=ec2``; falls back to
  ``GetAWSDefaultServiceQuota`` when no applied value exists): the family's On-Demand vCPU limit;
* ``ec2:DescribeCapacityReservations``: the named reservation (by id; its ``PlacementGroupArn``
  names the cluster placement group it was created in, which the judge compares with the pool's
  ``placement_group_name``: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/cr-cpg.html), and
  the other active reservations of a type (for alternatives).

* ``ec2:GetSpotPlacementScores`` for each pool with spot nodes (``TargetCapacity`` = its spot nodes,
  one instance type, its region): AWS's 1-10 likelihood that a spot request of that size succeeds
  now (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-placement-score.html); a score is a
  hint, never a guarantee. moto 5.2 does not implement the call: against it the check reports
  "could not be checked" (exit 4).

Only reads live here; :class:`gpufleet.preflight.judge.Judge` judges them, in the words of
``preflight.yaml``. botocore's errors are mapped once, by :func:`classify`. boto3 is imported
inside the methods, so importing this module costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gpufleet.catalog import InstanceType
from gpufleet.plan import PoolPlan
from gpufleet.preflight import reads
from gpufleet.preflight.base import Finding, PreflightOptions, api_error, register
from gpufleet.preflight.judge import Judge, catalog_mismatches
from gpufleet.spec import SiteSpec

QUOTA_CODES: dict[str, tuple[str, str]] = {
    "p": ("L-417A185B", "Running On-Demand P instances"),
    "g": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "vt": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
}
"""Instance family letters -> (Service Quotas code, quota name) of its On-Demand vCPU quota
(ServiceCode ``ec2``). Source: the Service Quotas console / ``list-service-quotas --service-code
ec2``; codes cross-checked in public quota scripts on 2026-11-26."""

NOT_FOUND_CODES = frozenset({"InvalidInstanceType", "NoSuchResourceException",
                             "InvalidCapacityReservationId.NotFound", "InvalidCapacityReservationId.Malformed"})
"""Error codes that mean "no such thing": a type EC2 does not describe here, a quota with no
applied value, a reservation id that does not exist (or cannot)."""
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"})
AUTH_CODES = frozenset({"AuthFailure", "UnauthorizedOperation", "AccessDenied", "AccessDeniedException",
                        "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException"})

SPOT_SCORE_CHECK = "ec2:GetSpotPlacementScores"
SPOT_SCORE_LIKELY = 5
"""A spot placement score (1-10) below this is reported as a warning: a request of that size is
unlikely to be fulfilled in the region now (10: highly likely)."""

ClientFactory = Callable[[str, str], Any]
"""``(service_name, region) -> boto3 client``."""


def quota_family(instance_type: str) -> str:
    """The family letters that pick the On-Demand quota: ``p6-b200.48xlarge`` -> ``p``, ``g6e`` -> ``g``."""
    match = re.match(r"[a-z]+", instance_type)
    return match.group(0) if match else ""


def classify(exc: BaseException) -> reads.Reason | None:
    """The :data:`~gpufleet.preflight.reads.Reason` of a botocore error (``None``: not botocore's).

    Service errors after retries (``ClientError``) by their code; transport errors (no connection,
    timeouts) as ``unreachable``; missing credentials as ``auth``; anything else botocore raises,
    including answers it cannot parse (an endpoint that is not EC2, an emulator's 500 page), as
    ``failed``.
    """
    from botocore import exceptions as bexc  # type: ignore[import-untyped,unused-ignore]
    from botocore.parsers import ResponseParserError  # type: ignore[import-untyped,unused-ignore]

    if isinstance(exc, bexc.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in NOT_FOUND_CODES:
            return "not_found"
        if code in THROTTLING_CODES:
            return "throttled"
        return "auth" if code in AUTH_CODES else "failed"
    if isinstance(exc, (bexc.EndpointConnectionError, bexc.ConnectTimeoutError, bexc.ReadTimeoutError)):
        return "unreachable"
    if isinstance(exc, (bexc.NoCredentialsError, bexc.PartialCredentialsError)):
        return "auth"
    if isinstance(exc, (bexc.BotoCoreError, ResponseParserError)):
        return "failed"
    return None


def ec2_facts(item: Mapping[str, Any]) -> reads.InstanceFacts:
    """One ``DescribeInstanceTypes`` entry as instance facts."""
    gpus = (item.get("GpuInfo") or {}).get("Gpus") or []
    # Trainium chips are Neuron devices. Their names ("Trainium") differ from the catalog's
    # (trainium1) and the trn2 snapshot's per-device memory is the instance's (see the catalog
    # notes), so only their count is compared.
    chips = (item.get("NeuronInfo") or {}).get("NeuronDevices") or []
    network = item.get("NetworkInfo") or {}
    vcpus = (item.get("VCpuInfo") or {}).get("DefaultVCpus")
    return reads.InstanceFacts(
        gpus=sum(int(g.get("Count", 0)) for g in [*gpus, *chips]),
        vcpus=None if vcpus is None else int(vcpus),
        gpu_model=(str(gpus[0].get("Name", "")) or None) if gpus else None,
        gpu_memory_mib=(gpus[0].get("MemoryInfo") or {}).get("SizeInMiB") if gpus else None,
        fabric="efa",
        fabric_interfaces=int((network.get("EfaInfo") or {}).get("MaximumEfaInterfaces", 0))
        if network.get("EfaSupported") else 0,
    )


def compare_instance_type(row: InstanceType, item: Mapping[str, Any]) -> list[str]:
    """Where EC2's ``DescribeInstanceTypes`` entry disagrees with the catalog row (empty: agrees)."""
    return catalog_mismatches(row, ec2_facts(item), AwsChecker.wording())


@register
class AwsChecker(Judge):
    """AWS's reads through boto3 (see the module docstring for the calls)."""

    cloud = "aws"
    sdk = reads.Sdk(classify, loggers=("botocore", "urllib3"))

    def __init__(self, options: PreflightOptions | None = None, *, client_factory: ClientFactory | None = None) -> None:
        super().__init__(options)
        self._factory: ClientFactory = client_factory or self.make_client
        self._session: Any = None
        self._clients: dict[tuple[str, str], Any] = {}

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
        credentials = self.attempt(lambda: self._boto_session().get_credentials())
        if isinstance(credentials, reads.ProviderError):
            return f"AWS credentials could not be loaded ({credentials.cause})"
        if credentials is None:
            return ("no AWS credentials found (botocore's chain: environment, shared credentials and config "
                    "files, SSO, container and instance metadata)")
        return None

    def check(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """The judge's checks, then the spot placement score of each pool with spot nodes (when the
        credentials let the judge check anything)."""
        findings = super().check(pools, sites)
        if any(f.kind == "not_checked" and f.check == self.credential_source for f in findings):
            return findings
        by_name = {s.name: s for s in sites}
        return findings + [self.spot_placement(by_name[p.site], p) for p in pools
                           if p.cloud == self.cloud and p.spot_nodes and p.site in by_name]

    def spot_placement(self, site: SiteSpec, pool: PoolPlan) -> Finding:
        """How likely AWS rates a spot request for the pool's spot nodes in its region."""
        what = f"the spot placement of {pool.spot_nodes} x {pool.instance_type} in {site.region}"
        answer = self.attempt(lambda: self._client("ec2", site.region).get_spot_placement_scores(
            InstanceTypes=[pool.instance_type], TargetCapacity=pool.spot_nodes, TargetCapacityUnitType="units",
            SingleAvailabilityZone=False, RegionNames=[site.region]))
        if isinstance(answer, reads.ProviderError):
            return api_error(self.cloud, site.name, [pool], SPOT_SCORE_CHECK, answer, what)
        scores = [int(s.get("Score", 0)) for s in answer.get("SpotPlacementScores", []) if s.get("Region") == site.region]
        score = max(scores, default=0)
        details = {"spot_placement_score": score, "spot_nodes": pool.spot_nodes}
        if score >= SPOT_SCORE_LIKELY:
            return Finding(self.cloud, "offering", "ok", site.name, (pool.name,), SPOT_SCORE_CHECK,
                           f"{what}: score {score}/10, likely to succeed now (a hint, not a guarantee)", details=details)
        return Finding(self.cloud, "offering", "warning", site.name, (pool.name,), SPOT_SCORE_CHECK,
                       f"{what}: score {score}/10, unlikely to be fulfilled now; the on-demand floor still carries "
                       "the peak, but plan for the spot share to be missing (a lower spot.max_fraction, or another "
                       "region or type)", details=details)

    # --- offerings and instance facts ------------------------------------------------------------------

    def offered_zones(self, region: str, instance_types: Sequence[str]) -> dict[str, set[str]]:
        """Availability Zones of ``region`` that offer each type (``DescribeInstanceTypeOfferings``).

        The region is asked once, for every catalog type of AWS (and any other type asked), and a
        failure is remembered for the region.
        """
        known = self.remember(("offerings", region), lambda: self._describe_offerings(
            region, sorted({r.instance_type for r in self.catalog.for_cloud(self.cloud)} | set(instance_types))))
        extra = tuple(sorted(set(instance_types) - set(known)))
        if extra:
            known = {**known, **self.remember(("offerings", region, extra),
                                              lambda: self._describe_offerings(region, list(extra)))}
        return {t: set(known[t]) for t in instance_types}

    def _describe_offerings(self, region: str, names: list[str]) -> dict[str, set[str]]:
        paginator = self._client("ec2", region).get_paginator("describe_instance_type_offerings")
        found: dict[str, set[str]] = {t: set() for t in names}
        for start in range(0, len(names), 100):
            pages = paginator.paginate(LocationType="availability-zone",
                                       Filters=[{"Name": "instance-type", "Values": names[start:start + 100]}])
            for page in pages:
                for offer in page.get("InstanceTypeOfferings", []):
                    found.setdefault(offer["InstanceType"], set()).add(offer["Location"])
        return found

    def offerings(self, site: SiteSpec, instance_types: Sequence[str],
                  zones: Sequence[str]) -> dict[str, reads.Offering]:
        return {t: reads.Offering(t, frozenset(z), listed=bool(z), lists_region=True)
                for t, z in self.offered_zones(site.region, instance_types).items()}

    def describe_instance_types(self, region: str, instance_types: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``DescribeInstanceTypes`` entries by name; a type EC2 rejects is left out."""
        ec2 = self._client("ec2", region)
        found: dict[str, dict[str, Any]] = {}
        names = list(instance_types)
        for start in range(0, len(names), 100):
            batch = names[start:start + 100]
            answer = self.find(ec2.describe_instance_types, InstanceTypes=batch)
            if answer is not None:
                items = answer["InstanceTypes"]
            elif len(batch) == 1:  # EC2 does not know this type here
                continue
            else:  # one unknown name fails the whole batch: ask one by one, keep the others
                items = [item for name in batch for item in self.describe_instance_types(region, [name]).values()]
            for item in items:
                found[item["InstanceType"]] = item
        return found

    def instance_facts(self, site: SiteSpec, wanted: Mapping[str, Sequence[str]]) -> dict[str, reads.InstanceFacts]:
        return self._facts(site.region, list(wanted))

    def _facts(self, region: str, instance_types: Sequence[str]) -> dict[str, reads.InstanceFacts]:
        return {t: ec2_facts(item) for t, item in self.describe_instance_types(region, instance_types).items()}

    def check_catalog(self, region: str, instance_types: Sequence[str], *, site: str = "",
                      pools: Sequence[PoolPlan] = ()) -> list[Finding]:
        """EC2's GPU count and memory, vCPUs and EFA interfaces of ``instance_types`` in ``region``
        against the catalog rows (findings about ``pools``, at their sites or ``site``)."""
        return self.judge_catalog(region, instance_types, site=site, pools=pools,
                                  read=lambda: self._facts(region, instance_types))

    # --- quotas --------------------------------------------------------------------------------------

    def quota_named(self, instance_type: str) -> reads.Quota | None:
        code = QUOTA_CODES.get(quota_family(instance_type))
        return reads.Quota(code[0], code[1]) if code else None

    def quotas_of(self, site: SiteSpec, pool: PoolPlan) -> tuple[reads.Quota, ...] | reads.UnknownQuota:
        quota = self.quota_named(pool.instance_type)
        if quota is None:
            family = quota_family(pool.instance_type)
            return reads.UnknownQuota(f"no On-Demand vCPU quota code is known for the {family!r} family of "
                                      f"{pool.instance_type}; check its quota by hand")
        return (quota,)

    def quota_scope(self, site: SiteSpec) -> str:
        return site.region

    def quota_room(self, site: SiteSpec, quota: reads.Quota) -> reads.QuotaRoom:
        """The applied value of an EC2 quota in the site's region (vCPUs), or else its default."""
        def read() -> reads.QuotaRoom:
            sq = self._client("service-quotas", site.region)
            applied = self.find(sq.get_service_quota, ServiceCode="ec2", QuotaCode=quota.key)
            answer = applied or sq.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=quota.key)
            return reads.QuotaRoom(limit=float(answer["Quota"]["Value"]))

        return self.remember(("quota", site.region, quota.key), read)

    # --- reservations --------------------------------------------------------------------------------

    def reservation_ref(self, site: SiteSpec, pool: PoolPlan) -> reads.ReservationRef:
        rid = pool.reservation_id or ""
        return reads.ReservationRef(id=rid, name=rid, what=f"reservation {rid}",
                                    searched=f"in {site.region} (or this account cannot see it)",
                                    details={"region": site.region})

    def reservation(self, site: SiteSpec, pool: PoolPlan, ref: reads.ReservationRef) -> reads.Reservation | None:
        ec2 = self._client("ec2", site.region)
        answer = self.find(ec2.describe_capacity_reservations, CapacityReservationIds=[ref.id])
        items = answer["CapacityReservations"] if answer else []
        return _reservation(items[0], ref.id) if items else None

    def other_reservations(self, site: SiteSpec, pool: PoolPlan) -> list[reads.Reservation]:
        paginator = self._client("ec2", site.region).get_paginator("describe_capacity_reservations")
        pages = paginator.paginate(Filters=[{"Name": "instance-type", "Values": [pool.instance_type]},
                                            {"Name": "state", "Values": ["active"]}])
        return [_reservation(cr, "") for page in pages for cr in page.get("CapacityReservations", [])]


def _reservation(cr: Mapping[str, Any], rid: str) -> reads.Reservation:
    """One ``DescribeCapacityReservations`` entry (an ODCR or a Capacity Block) as facts."""
    state = str(cr.get("State", ""))
    itype = str(cr.get("InstanceType", ""))
    zone = str(cr.get("AvailabilityZone", ""))
    available = int(cr.get("AvailableInstanceCount", 0))
    total = int(cr.get("TotalInstanceCount", 0))
    start = cr.get("StartDate")
    group_arn = str(cr.get("PlacementGroupArn") or "")
    details = {"state": state, "instance_type": itype, "availability_zone": zone,
               "available_instances": available, "total_instances": total}
    return reads.Reservation(
        id=str(cr.get("CapacityReservationId", rid)), instance_type=itype, zone=zone, state=state,
        ready=state == "active", scheduled=state == "scheduled", starts=None if start is None else str(start),
        room=available, total=total, placement=_placement_group_name(group_arn) if group_arn else None,
        details={**details, "placement_group_arn": group_arn} if group_arn else details)


def _placement_group_name(arn: str) -> str:
    """The group name in a placement group ARN (``arn:aws:ec2:<region>:<account>:placement-group/<name>``)."""
    return arn.rsplit(":placement-group/", 1)[-1]

"""The preflight seam: typed findings, ranked alternatives, and the one interface each cloud implements.

Pure: no cloud SDK is imported here. A :class:`CloudChecker` turns the pools of a plan (and the
sites of its cloud) into :class:`Finding` objects by asking the provider's own API. Every cloud's
checker is a :class:`gpufleet.preflight.judge.Judge` with that cloud's reads, in
``gpufleet.clouds.<cloud>.preflight`` (for each cloud of the :mod:`gpufleet.clouds` registry),
which registers it with :func:`register`; :func:`checker_for` imports that module on first use.

Invariants every checker keeps:

* one finding per check and place, including passes (``severity="ok"``), so a report shows what
  was checked, not only what failed;
* a check that could not run is never a pass: missing credentials give ``kind="not_checked"``,
  a failed or throttled call gives ``kind="api_error"``, both with ``severity="unknown"``;
* a shortfall (``severity="error"``) says how many GPUs are short and lists the alternatives that
  would fit, ranked by :func:`rank_alternatives`.
"""

from __future__ import annotations

import importlib
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, TypeVar

from gpufleet import clouds
from gpufleet.catalog import Catalog, load_catalog
from gpufleet.plan import PoolPlan
from gpufleet.preflight.reads import ProviderError
from gpufleet.spec import SiteSpec

Kind = Literal["offering", "quota", "reservation", "catalog", "not_checked", "api_error"]
KINDS: tuple[str, ...] = ("offering", "quota", "reservation", "catalog", "not_checked", "api_error")

Severity = Literal["ok", "warning", "error", "unknown"]
"""``ok``: checked and fine. ``warning``: checked, deployable, but worth a look. ``error``: a
shortfall that blocks the deployment (exit 3). ``unknown``: the check could not run (exit 4)."""
SEVERITIES: tuple[str, ...] = ("error", "unknown", "warning", "ok")

AlternativeKind = Literal["zone", "instance_type", "site", "reservation", "on_demand"]
_KIND_ORDER: dict[str, int] = {"zone": 0, "instance_type": 1, "reservation": 2, "site": 3, "on_demand": 4}


@dataclass(frozen=True)
class Alternative:
    """One way around a shortfall.

    Attributes:
        kind: ``zone`` (another zone of the same site), ``instance_type`` (another type with the
            same GPU), ``reservation`` (another reservation that has room), ``site`` (another site of
            the same cloud), ``on_demand`` (drop the reservation and launch on demand).
        site, region, zones: where the alternative puts the capacity.
        instance_type: the instance type it uses.
        covers_gpus: how many of the short GPUs it can carry, when the provider says (quota left,
            reservation room); ``None`` when nothing bounds it but capacity on the day.
        in_spec: the spec already allows it (a declared zone or site, an allowed instance type);
            ``False`` means the spec has to change first (the note says how).
        note: why it fits, with units.
        rank: 1 for the best alternative of a finding (set by :func:`rank_alternatives`).
    """

    kind: AlternativeKind
    site: str
    region: str
    zones: tuple[str, ...]
    instance_type: str
    covers_gpus: int | None
    in_spec: bool
    note: str
    rank: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "kind": self.kind, "site": self.site, "region": self.region,
            "zones": list(self.zones), "instance_type": self.instance_type,
            "covers_gpus": self.covers_gpus, "in_spec": self.in_spec, "note": self.note,
        }


@dataclass(frozen=True)
class Finding:
    """The outcome of one check at one site, for one or more pools.

    Attributes:
        cloud: ``aws``, ``azure`` or ``gcp``.
        kind: what was checked: ``offering`` (type offered in the zones), ``quota``, ``reservation``,
            ``catalog`` (the provider's figures against gpufleet's catalog), or why it was not:
            ``not_checked`` (no credentials, no project/subscription), ``api_error``.
        severity: ``ok``, ``warning``, ``error`` (a shortfall) or ``unknown`` (not checked).
        site: the spec's site name.
        pools: the plan's pool names the finding is about (a quota is shared by several).
        check: the API call(s) behind the finding, e.g. ``ec2:DescribeInstanceTypeOfferings``.
        message: what was found, with units.
        shortfall_gpus: GPUs that cannot be deployed as planned (0 unless ``severity`` is ``error``
            and the shortfall is countable).
        alternatives: ways around the shortfall, best first.
        details: the numbers behind the message, unit-suffixed keys (``needed_vcpus``, ``limit_vcpus``).
    """

    cloud: str
    kind: Kind
    severity: Severity
    site: str
    pools: tuple[str, ...]
    check: str
    message: str
    shortfall_gpus: int = 0
    alternatives: tuple[Alternative, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud, "kind": self.kind, "severity": self.severity, "site": self.site,
            "pools": list(self.pools), "check": self.check, "message": self.message,
            "shortfall_gpus": self.shortfall_gpus,
            "alternatives": [a.to_json() for a in self.alternatives],
            "details": self.details,
        }


@dataclass(frozen=True)
class PreflightOptions:
    """How the checkers talk to the providers.

    Attributes:
        aws_endpoint_url: send every AWS call here (an emulator such as moto); default: AWS.
        max_attempts: attempts per call, first try included, for throttling and server errors.
        backoff_initial_s: first retry delay (each SDK grows it exponentially).
        backoff_max_s: longest delay between two attempts.
        timeout_s: connect/read timeout of one attempt.
        retry_deadline_s: Google API calls: total time allowed across attempts.
        deadline_s: the whole run: checks not finished by then are reported ``not_checked``
            (an endpoint that accepts and never answers, or drips a byte at a time, cannot hold
            CI hostage; per-attempt timeouts alone reset on every byte).
    """

    aws_endpoint_url: str | None = None
    max_attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 20.0
    timeout_s: float = 30.0
    retry_deadline_s: float = 120.0
    deadline_s: float = 300.0
    catalog: Catalog | None = None

    def the_catalog(self) -> Catalog:
        return self.catalog or load_catalog()


class CloudChecker(ABC):
    """Checks a cloud's pools against what that cloud offers the account.

    Implementations import their SDK lazily (inside methods), find credentials through the SDK's
    usual chain without hanging, and never raise for a provider-side problem: they return
    ``not_checked`` / ``api_error`` findings instead and carry on with the other checks.
    """

    cloud: ClassVar[str]

    def __init__(self, options: PreflightOptions | None = None) -> None:
        self.options = options or PreflightOptions()
        self.catalog = self.options.the_catalog()
        self.done: list[Finding] = []
        """Findings of the steps finished so far (what a run cut short by its deadline still reports)."""
        self.pending: list[tuple[str, list[str]]] = []
        """``(check, site names)`` of the steps not finished yet."""

    credential_source: str
    """What finds the credentials, as a finding names it (e.g. ``botocore credential chain``)."""

    sdk_loggers: tuple[str, ...] = ()
    """Loggers of the SDK to keep quiet while checking (credential probes, retries): findings say it."""

    def check(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Check ``pools`` placed at ``sites`` (every site of this cloud in the spec, so alternatives
        can name the others): credentials, then per site its offerings and catalog agreement, then
        quotas and reservations. Pools and sites of other clouds are ignored."""
        pools = [p for p in pools if p.cloud == self.cloud]
        sites = [s for s in sites if s.cloud == self.cloud]
        if not pools:
            return []
        self.done = findings = []  # a checker may be run again (tests reuse injected ones)
        every_site = [s.name for s in sites if any(p.site == s.name for p in pools)]
        self.pending = [(self.credential_source, every_site)]
        problem = self.credentials_problem()
        self.pending = []
        if problem:
            findings += not_checked(self.cloud, sites, pools, self.credential_source, problem)
            return findings
        usable: list[SiteSpec] = []
        for site in sites:
            unusable = self.site_unusable(site)
            if unusable is None:
                usable.append(site)
            else:
                findings += not_checked(self.cloud, [site], pools, *unusable)
        names = [s.name for s in usable if s.name in every_site]
        self.pending = [("offerings", names), ("quotas", names), ("reservations", names)]
        described: set[str] = set()
        for site in usable:
            mine = [p for p in pools if p.site == site.name]
            if mine:
                findings += self.check_offerings(site, mine, usable)
                findings += self.check_site_catalog(site, mine, pools, described)
        self.pending.pop(0)
        findings += self.check_quotas([p for p in pools if p.site in names], usable)
        self.pending.pop(0)
        for site in usable:
            findings += self.check_reservations(site, [p for p in pools if p.site == site.name])
        self.pending = []
        return findings

    @abstractmethod
    def credentials_problem(self) -> str | None:
        """Why this cloud cannot be checked (no credentials), or None. Must not hang."""

    def site_unusable(self, site: SiteSpec) -> tuple[str, str] | None:
        """``(what, why)`` when a site lacks what its checks need (a project, a subscription)."""
        return None

    @abstractmethod
    def check_offerings(self, site: SiteSpec, pools: Sequence[PoolPlan],
                        sites: Sequence[SiteSpec]) -> list[Finding]:
        """Is each pool's instance type offered in its zones? Alternatives may name ``sites``."""

    @abstractmethod
    def check_site_catalog(self, site: SiteSpec, mine: Sequence[PoolPlan], pools: Sequence[PoolPlan],
                           described: set[str]) -> list[Finding]:
        """Does the provider describe the site's instance types as the catalog does? Types already
        in ``described`` were compared at another site; add the ones compared here."""

    @abstractmethod
    def check_quotas(self, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec]) -> list[Finding]:
        """Do the account's quotas cover the pools?"""

    @abstractmethod
    def check_reservations(self, site: SiteSpec, pools: Sequence[PoolPlan]) -> list[Finding]:
        """Do the reservations the site's pools count on exist, with room?"""


CHECKERS: dict[str, type[CloudChecker]] = {}
"""Cloud name -> checker class, filled by :func:`register`."""

_C = TypeVar("_C", bound=type[CloudChecker])


def register(cls: _C) -> _C:
    """Class decorator: make ``cls`` the checker of ``cls.cloud``."""
    if cls.cloud in CHECKERS and CHECKERS[cls.cloud] is not cls:
        raise ValueError(f"a preflight checker for {cls.cloud!r} is already registered")
    CHECKERS[cls.cloud] = cls
    return cls


def checker_module(cloud: str) -> str:
    """The module of ``cloud``'s preflight reads: ``preflight`` in the cloud's package of the registry.

    Raises:
        KeyError: gpufleet knows no such cloud (the message lists the ones it knows).
    """
    return f"{clouds.__name__}.{clouds.profile(cloud).name}.preflight"


def checker_for(cloud: str) -> type[CloudChecker]:
    """The checker class of ``cloud``, importing its module (which registers it) on first use."""
    if cloud not in CHECKERS:
        importlib.import_module(checker_module(cloud))
    return CHECKERS[cloud]


# --- helpers shared by the checkers -----------------------------------------------------------------


def rank_alternatives(alternatives: Sequence[Alternative], shortfall_gpus: int) -> tuple[Alternative, ...]:
    """Order alternatives best first and number them.

    Order: (1) those the spec already allows before those that need a spec change; (2) those that
    carry the whole shortfall (or are unbounded) before partial ones; (3) the least disruptive kind
    first: another zone of the same site, another instance type with the same GPU, another
    reservation, another site, on-demand; (4) more GPUs covered; then by name, so the order is
    deterministic.
    """

    def key(a: Alternative) -> tuple[Any, ...]:
        full = a.covers_gpus is None or a.covers_gpus >= shortfall_gpus
        return (not a.in_spec, not full, _KIND_ORDER[a.kind], -(a.covers_gpus or 0), a.site, a.zones,
                a.instance_type)

    unique: dict[tuple[Any, ...], Alternative] = {}
    for a in alternatives:
        unique.setdefault((a.kind, a.site, a.zones, a.instance_type), a)
    ordered = sorted(unique.values(), key=key)
    return tuple(replace(a, rank=i) for i, a in enumerate(ordered, start=1))


def unfit_gpus(pools: Sequence[PoolPlan], units_per_node: Callable[[PoolPlan], float], available: float) -> int:
    """GPUs of ``pools`` that do not fit in ``available`` units (vCPUs or GPUs of a quota).

    Pools are filled in name order, whole nodes only, so the answer is what a deployment would
    actually be short of: with one instance type it is exact.
    """
    left = max(available, 0.0)
    short = 0
    for pool in sorted(pools, key=lambda p: p.name):
        per_node = units_per_node(pool)
        fit = pool.nodes if per_node <= 0 else min(pool.nodes, math.floor(left / per_node + 1e-9))
        left -= fit * per_node
        short += (pool.nodes - fit) * pool.gpus_per_node
    return short


def nodes_in(pool: PoolPlan, zones: Sequence[str]) -> int:
    """Nodes the plan puts in ``zones`` (all of them when the plan has no per-zone split)."""
    if not pool.nodes_by_zone:
        return pool.nodes if set(zones) & set(pool.zones) else 0
    return sum(pool.nodes_by_zone.get(z, 0) for z in zones)


def not_checked(cloud: str, sites: Sequence[SiteSpec], pools: Sequence[PoolPlan], check: str,
                reason: str) -> list[Finding]:
    """One ``not_checked`` finding per site that has pools: the reason, never a pass."""
    findings: list[Finding] = []
    for site in sites:
        mine = tuple(p.name for p in pools if p.site == site.name)
        if mine:
            findings.append(Finding(cloud=cloud, kind="not_checked", severity="unknown", site=site.name,
                                    pools=mine, check=check, message=f"not checked: {reason}"))
    return findings


def api_error(cloud: str, site: str, pools: Sequence[PoolPlan] | Sequence[str], check: str,
              exc: BaseException, what: str) -> Finding:
    """An ``api_error`` finding for a call that failed after the SDK's retries (or a checker that
    failed): the SDK's own error type and text, and, for a mapped error, why in ``details.reason``."""
    names = tuple(p if isinstance(p, str) else p.name for p in pools)
    cause = exc.cause if isinstance(exc, ProviderError) else exc
    text = " ".join(str(cause).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return Finding(cloud=cloud, kind="api_error", severity="unknown", site=site, pools=names, check=check,
                   message=f"{what} could not be checked: {type(cause).__name__}: {text}",
                   details={"reason": exc.reason} if isinstance(exc, ProviderError) else {})


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


@contextmanager
def quiet_sdk_logs(names: Sequence[str]) -> Iterator[None]:
    """Keep the ``names`` loggers' warnings (credential probes, retries) out of the command's output."""
    loggers = [logging.getLogger(n) for n in names]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, saved):
            lg.setLevel(level)

"""What preflight reads from a provider, as plain facts, and the one way a provider's errors come back.

Pure: no cloud SDK is imported here. Each cloud's reads (``gpufleet.clouds.<cloud>.preflight``)
implement :class:`Reads` and return the dataclasses below; :class:`gpufleet.preflight.judge.Judge`
turns them into findings the same way for every cloud.

SDK errors are mapped once per cloud, at this boundary: the ``classify`` of the cloud's :class:`Sdk`
names the :data:`Reason` an SDK exception stands for, and every read runs under :func:`mapped` (the judge
calls reads through :meth:`Reads.attempt`), so what leaves a read is a fact or a
:class:`ProviderError`, never an SDK exception. ``not_found`` is a
fact (the thing is absent: :meth:`Reads.find` returns ``None``, and the judge may find a shortfall);
every other reason means the check could not run (an ``api_error`` finding, never a pass).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, cast

from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec

T = TypeVar("T")

Reason = Literal["auth", "throttled", "not_found", "unreachable", "failed"]
"""Why a provider call failed: ``auth`` (credentials refused or missing a permission), ``throttled``
(rate limited after the SDK's retries), ``not_found`` (the thing asked for does not exist),
``unreachable`` (no connection to the endpoint, or a timeout), ``failed`` (anything else the SDK
raises: server errors after retries, answers it cannot parse)."""

Classifier = Callable[[BaseException], "Reason | None"]
"""A cloud's mapping of its SDK's exceptions to a :data:`Reason` (``None``: not an SDK error)."""

Unit = Literal["vcpus", "gpus"]
"""What a quota counts."""


@dataclass(frozen=True)
class Sdk:
    """The SDK a cloud's reads call.

    Attributes:
        classify: the one mapping of its exceptions to a :data:`Reason`.
        loggers: the loggers it writes to (credential probes, retries), kept quiet while it runs:
            the findings say what went wrong.
    """

    classify: Classifier
    loggers: tuple[str, ...] = ()


class ProviderError(Exception):
    """A provider call that failed after its SDK's retries, mapped once at the cloud's boundary.

    Attributes:
        reason: why, as a :data:`Reason`.
        cause: the SDK's own exception (its type and text go into the finding's message).
    """

    def __init__(self, reason: Reason, cause: BaseException) -> None:
        super().__init__(f"{reason}: {type(cause).__name__}: {cause}")
        self.reason: Reason = reason
        self.cause = cause


@contextmanager
def mapped(classify: Classifier) -> Iterator[None]:
    """Run the body with the SDK's exceptions turned into :class:`ProviderError`.

    An exception ``classify`` does not know (``None``) is a bug, not a provider answer: it goes on.
    """
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        reason = classify(exc)
        if reason is None:
            raise
        raise ProviderError(reason, exc) from exc


def attempt(fn: Callable[[], T], classify: Classifier) -> T | ProviderError:
    """``fn()``, or the :class:`ProviderError` it failed with (SDK errors mapped by ``classify``)."""
    try:
        with mapped(classify):
            return fn()
    except ProviderError as err:
        return err


# --- the facts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offering:
    """Where a provider offers one instance type around one site.

    Attributes:
        instance_type: the type asked about.
        zones: zones where it can be launched (offered and not restricted).
        listed: the provider knows the type in the region at all (a size in the SKU list, a type
            with at least one offered zone, a machine type found in an asked zone).
        lists_region: ``zones`` covers every zone of the region; ``False`` when only the zones
            asked about were looked at (so zones beyond the site's cannot be suggested).
        restricted_zones: zones that offer the type but refuse it to this account.
        refused: why the whole region refuses the type to this account (a reason code), if it does.
    """

    instance_type: str
    zones: frozenset[str]
    listed: bool
    lists_region: bool
    restricted_zones: frozenset[str] = frozenset()
    refused: str | None = None


@dataclass(frozen=True)
class InstanceFacts:
    """What the provider says an instance type is; ``None``: the provider does not say.

    Attributes:
        gpus: GPUs per node.
        vcpus: vCPUs per node.
        gpu_model: the GPU's name as the provider spells it (e.g. ``H100``).
        gpu_memory_mib: memory per GPU, in MiB.
        fabric: the GPU fabric the interface count is about (e.g. ``efa``).
        fabric_interfaces: interfaces of that fabric per node (0: the type has none).
        accelerators: accelerator type names (GCP's ``nvidia-l4``).
    """

    gpus: int | None = None
    vcpus: int | None = None
    gpu_model: str | None = None
    gpu_memory_mib: int | None = None
    fabric: str = ""
    fabric_interfaces: int | None = None
    accelerators: tuple[str, ...] = ()


@dataclass(frozen=True)
class Quota:
    """One quota an on-demand pool draws on.

    Attributes:
        key: the provider's identifier (``L-417A185B``, ``standardNDSH100v5Family``, ``cores``,
            ``NVIDIA_L4_GPUS``).
        name: how messages name it (``Running On-Demand P instances``, ``Total Regional vCPUs``).
        total: a total over other quotas (Azure's regional vCPUs): a failure to read it is the same
            failure as theirs, and moving to another type or site is judged on theirs.
    """

    key: str
    name: str
    total: bool = False


@dataclass(frozen=True)
class QuotaRoom:
    """A quota's value in one place, in its unit (see ``Reads.quota_unit``).

    Attributes:
        limit: the quota's limit.
        used: what the account uses already; ``None`` when the provider's quota API does not say
            (the plan is then compared with the whole limit).
    """

    limit: float
    used: float | None = None

    @property
    def free(self) -> float:
        return self.limit - (self.used or 0.0)


@dataclass(frozen=True)
class UnknownQuota:
    """A pool whose quota preflight cannot name (an unknown family, an unmapped accelerator)."""

    why: str


@dataclass(frozen=True)
class ReservationRef:
    """The reservation a pool counts on, as the reads look for it (no I/O to build).

    Attributes:
        id: ``reservation_id`` as the finding's details report it.
        name: how messages name it.
        what: what an ``api_error`` says could not be checked.
        searched: where it was looked for, as "does not exist <searched>" reads.
        details: what a "does not exist" finding's details add (e.g. the region).
        locator: what the cloud's read needs to find it (resource group, zones, ...).
    """

    id: str
    name: str
    what: str
    searched: str
    details: Mapping[str, Any] = field(default_factory=dict)
    locator: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reservation:
    """What the provider says about one reservation (or the matching part of a reservation group).

    Attributes:
        id: the provider's identifier (what ``reservation_id`` would be set to).
        instance_type: the type it reserves.
        zone: where it is (``None``: not one zone, e.g. a group already matched to the pool's zones).
        state: the provider's state word (``active``, ``READY``, ...).
        ready: instances can launch into it now.
        scheduled: it is not active yet but will be (``starts`` says when, if known).
        room: instances it can still take.
        total: instances it reserves in all (``None``: not one number).
        placement: the compact placement it was created in and alone serves (an AWS cluster placement
            group's name), or None.
        details: the provider's figures, for the finding's details.
    """

    id: str
    instance_type: str
    zone: str | None
    state: str
    ready: bool
    room: int
    total: int | None = None
    scheduled: bool = False
    starts: str | None = None
    placement: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


# --- the reads a cloud implements ---------------------------------------------------------------------


class Reads(ABC):
    """The reads one cloud implements against its provider's API, and the boundary they run behind.

    Every read may raise :class:`ProviderError` (the judge reports it) and nothing else from its
    SDK. Reads import their SDK lazily, inside the methods.
    """

    sdk: ClassVar[Sdk]
    """The SDK the reads call: its error mapping and its loggers."""
    quota_unit: ClassVar[Unit]
    """What this cloud's compute quotas count (most count vCPUs)."""

    def __init__(self) -> None:
        self._memo: dict[Hashable, Any] = {}

    # --- the boundary ------------------------------------------------------------------------------

    def attempt(self, fn: Callable[[], T]) -> T | ProviderError:
        """``fn()`` or the mapped error it failed with."""
        return attempt(fn, self.sdk.classify)

    def quietly(self, fn: Callable[[], T], default: T) -> T:
        """``fn()``, or ``default`` when it fails (for alternatives: a failed read offers none)."""
        value = self.attempt(fn)
        return default if isinstance(value, ProviderError) else value

    def find(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``fn(*args, **kwargs)``, or ``None`` when the provider says the thing does not exist."""
        value = self.attempt(lambda: fn(*args, **kwargs))
        if isinstance(value, ProviderError):
            if value.reason == "not_found":
                return None
            raise value
        return value

    def remember(self, key: Hashable, fn: Callable[[], T]) -> T:
        """``fn()`` once per ``key``: its value, or its failure raised again (one failed region is
        asked once, not once per check)."""
        if key not in self._memo:
            self._memo[key] = self.attempt(fn)
        value = self._memo[key]
        if isinstance(value, ProviderError):
            raise value
        return cast(T, value)

    # --- offerings and instance facts ---------------------------------------------------------------

    @abstractmethod
    def offerings(self, site: SiteSpec, instance_types: Sequence[str], zones: Sequence[str]) -> dict[str, Offering]:
        """Where each of ``instance_types`` is offered around ``site``. ``zones`` are the zones the
        judge asks about: a cloud that cannot list a region looks at just these."""

    @abstractmethod
    def instance_facts(self, site: SiteSpec, wanted: Mapping[str, Sequence[str]]) -> dict[str, InstanceFacts]:
        """What the provider says each type of ``wanted`` (type -> zones it is planned in) is; a
        type it does not describe is left out."""

    # --- quotas --------------------------------------------------------------------------------------

    @abstractmethod
    def quotas_of(self, site: SiteSpec, pool: PoolPlan) -> tuple[Quota, ...] | UnknownQuota:
        """The quotas an on-demand ``pool`` at ``site`` draws on (empty: none preflight can check,
        already reported elsewhere), or why its quota cannot be named."""

    def quota_named(self, instance_type: str) -> Quota | None:
        """The quota of ``instance_type`` when its name alone says it (no read); else ``None``."""
        return None

    @abstractmethod
    def quota_scope(self, site: SiteSpec) -> str:
        """Where a quota is counted (region, subscription and region, ...): sites with the same
        scope share their quotas."""

    @abstractmethod
    def quota_room(self, site: SiteSpec, quota: Quota) -> QuotaRoom | None:
        """The quota's limit (and use) in the site's scope; ``None`` when the provider lists no such quota."""

    # --- reservations --------------------------------------------------------------------------------

    @abstractmethod
    def reservation_ref(self, site: SiteSpec, pool: PoolPlan) -> ReservationRef:
        """The reservation ``pool.reservation_id`` names, as the reads will look for it. No I/O."""

    @abstractmethod
    def reservation(self, site: SiteSpec, pool: PoolPlan, ref: ReservationRef) -> Reservation | None:
        """The reservation ``ref`` names, as it concerns ``pool``; ``None`` when it does not exist."""

    def other_reservations(self, site: SiteSpec, pool: PoolPlan) -> Sequence[Reservation]:
        """Other reservations at the site that could carry ``pool`` (a cloud that cannot list them: none)."""
        return ()

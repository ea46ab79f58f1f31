"""What gpufleet knows of one cloud, as data and pure functions: the :class:`CloudProfile` seam.

Pure: no Pulumi, no cloud SDK, no I/O. The planner, ``gpufleet plan`` / ``preflight`` / ``preview``,
the Pulumi program, the components and the policy pack all read the same profile, so a cloud fact
(a NIC layout, a reserved address range, a capacity type) is written once.

A profile holds:

* what the cloud can switch on: :attr:`~CloudProfile.fabrics`, :attr:`~CloudProfile.capacity_types`,
  the fabric NICs a node attaches (:meth:`~CloudProfile.fabric_interfaces`) and how a training
  cluster splits into fabric islands (:meth:`~CloudProfile.islands`);
* what the cloud refuses, as *named* checks (:attr:`~CloudProfile.site_checks`,
  :attr:`~CloudProfile.pool_checks`, one function ``check_<subject>_<predicate>`` each, documented
  by its docstring) and the image forms it accepts (:meth:`~CloudProfile.check_image`);
* whether its node groups need an SSH key, its tag/label rules and where the pack finds them.

Resource type tokens, default names and NIC layouts live as constants and helpers in the cloud's
``profile.py`` next to its profile class; the cloud's components and pack readers import them.
:mod:`gpufleet.checks` runs the checks; :mod:`gpufleet.clouds` is the registry.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from gpufleet.errors import Issue

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType
    from gpufleet.plan import PoolPlan
    from gpufleet.spec import SiteSpec

SiteCheck = Callable[["SiteSpec", "Sequence[PoolPlan]", str], list[Issue]]
"""A named site check: ``(site, the pools placed there, the site's field path) → issues``."""
PoolCheck = Callable[["PoolPlan", "InstanceType", str], list[Issue]]
"""A named pool check: ``(pool, its instance type's catalog row, its workload's field path) → issues``."""


def match_or_issue(value: str | None, pattern: re.Pattern[str], loc: str, what: str, hint: str,
                   form: str = "") -> list[Issue]:
    """No issue when ``value`` is unset (other checks require it) or matches ``pattern``; else one
    naming the value, what it should be and the pattern (identifiers end up in resource names and
    API paths)."""
    if not value or pattern.fullmatch(value):
        return []
    shape = f"{form}, pattern" if form else "pattern"
    return [Issue(loc, f"{value!r} is not {what} ({shape} {pattern.pattern})", hint)]


def split_islands(nodes: int, per_island: int) -> tuple[int, ...]:
    """``nodes`` split into the fewest islands of at most ``per_island``, as even as possible."""
    count = math.ceil(nodes / per_island)
    base, extra = divmod(nodes, count)
    return tuple(base + (1 if i < extra else 0) for i in range(count))


class CloudProfile(ABC):
    """One cloud's facts and refusals. Subclasses set the class attributes; instances are stateless."""

    name: ClassVar[str]
    """The cloud name as the spec writes it."""
    title: ClassVar[str]
    """How messages name the cloud (``AWS``, ``Azure``, ``GCP``)."""
    fabrics: ClassVar[frozenset[str]] = frozenset()
    """GPU fabrics gpufleet can switch on here (catalog ``fabric`` values, ``none`` excluded)."""
    capacity_types: ClassVar[frozenset[str]] = frozenset({"on_demand"})
    """Training capacity types (spec ``capacity.type``) the cloud has."""
    needs_ssh_key: ClassVar[bool] = False
    """True when node groups need an SSH public key (config ``gpufleet:sshPublicKey``)."""
    site_checks: ClassVar[tuple[SiteCheck, ...]] = ()
    """Named checks of a site, run in order by :meth:`check_site`."""
    pool_checks: ClassVar[tuple[PoolCheck, ...]] = ()
    """Named checks of a pool, run in order by :meth:`check_pool`."""
    image_forms: ClassVar[str]
    """The image override forms the cloud accepts, as a message completes "is neither ..."."""
    image_examples: ClassVar[str]
    """Examples of those forms (the hint of a refused image)."""
    tag_paths: ClassVar[tuple[tuple[str, ...], ...]] = (("tags",),)
    """Where the cloud's resources carry their tags or labels (property paths, camelCase)."""
    name_tag: ClassVar[str | None] = None
    """A tag holding the resource's display name, added to every tagged resource (AWS ``Name``)."""
    kubernetes_attach_fields: ClassVar[tuple[str, ...]] = ("cluster_id",)
    """The :class:`~gpufleet.platforms.KubernetesSpec` fields naming an existing cluster node pools join."""
    kubernetes_accelerator_kinds: ClassVar[frozenset[str]] = frozenset({"gpu"})
    """Accelerator kinds (``gpu``, ``tpu``, ``trainium``) the cloud's Kubernetes node pools are built for."""

    # facts ------------------------------------------------------------------------------------------

    def fabric_interfaces(self, row: InstanceType) -> int:
        """Fabric NICs per node a training cluster of ``row`` attaches (0 without a fabric here)."""
        return row.fabric_interfaces if row.fabric in self.fabrics else 0

    def fabric_setup_gap(self, row: InstanceType) -> str | None:
        """What of ``row``'s fabric the nodes gpufleet builds do not bring up, as a sentence the plan
        reports (None: gpufleet enables the whole fabric, or the row has none). Where there is a gap,
        the plan reports the fabric as not enabled, with 0 Gbps, unless the run sets it up itself."""
        return None

    def islands(self, nodes: int, max_nodes_per_island: int) -> tuple[int, ...]:
        """Node counts of the fabric islands a training cluster of ``nodes`` splits into.

        Default: one island (the fabric reaches every node of the cluster); the spec's
        ``max_nodes_per_island`` matters only where the fabric ends at a smaller group.
        """
        return (nodes,)

    def resource_tags(self, tags: Mapping[str, str], name: str) -> dict[str, str]:
        """The tags or labels a resource named ``name`` carries: ``tags``, plus the name tag if any."""
        extra = {self.name_tag: name} if self.name_tag else {}
        return dict(sorted({**tags, **extra}.items()))

    @abstractmethod
    def image_is_valid(self, image: str) -> bool:
        """True when ``image`` has one of the forms the cloud's components accept."""

    # checks (pure; they run before any resource exists) ---------------------------------------------

    def check_site(self, site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
        """Every named site check's issues with ``site``, which hosts ``pools``."""
        return [issue for check in self.site_checks for issue in check(site, pools, loc)]

    def check_pool(self, pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
        """Every named pool check's issues with ``pool`` (``row`` is its catalog row)."""
        return [issue for check in self.pool_checks for issue in check(pool, row, loc)]

    def check_image(self, image: str, loc: str) -> list[Issue]:
        """An issue when an image override has none of the cloud's forms."""
        if self.image_is_valid(image):
            return []
        return [Issue(loc, f"{self.title} image {image!r} is neither {self.image_forms}", self.image_examples)]


__all__ = ["CloudProfile", "PoolCheck", "SiteCheck", "split_islands"]

"""Where capacity comes from: a training cluster's (on-demand, a reservation, a Capacity Block, or
GCP flex-start) and an inference service's spot share above its on-demand floor.

Pure: no I/O, no Pulumi. :class:`gpufleet.spec.TrainingSpec` carries a :class:`CapacitySpec` as
``capacity``; :class:`gpufleet.spec.InferenceSpec` a :class:`SpotSpec` as ``spot``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from gpufleet.sizing import left_after_losses, loss_domains
from gpufleet.validation import StrictModel


UNRESERVED = ("on_demand", "flex_start")
"""Capacity types that name no reservation."""


class CapacitySpec(StrictModel):
    """Where a training cluster's capacity comes from, and whether it uses a placement group.

    The combination matters: AWS Capacity Blocks are already co-located and reject a cluster
    placement group, and an On-Demand Capacity Reservation created in a cluster placement group
    serves only instances in that group and cannot move to another (``placement_group_name`` names
    it; gpufleet then launches into it and creates none). A reservation made outside any group also
    serves instances in a new group. Making the choice explicit lets gpufleet refuse what the cloud
    would reject, and ``gpufleet preflight`` compares the name with the reservation's group.
    """

    type: Literal["on_demand", "odcr", "capacity_block", "reservation", "flex_start"] = "on_demand"
    """``flex_start``: GCP's Dynamic Workload Scheduler (a MIG resize request of Flex-start VMs):
    best-effort, not a reservation; the VMs come when capacity is found and run at most 7 days."""
    reservation_id: str | None = None
    """ODCR / Capacity Block id (AWS), capacity reservation group id (Azure), reservation name (GCP)."""
    placement_group: bool = True
    """Launch into a compact placement (AWS cluster placement group; GCP workload policy or reservation)."""
    placement_group_name: Annotated[str, Field(
        pattern=r"^[!-~](?:[ -~]{0,253}[!-~])?$",
        description="1-255 printable ASCII characters (an EC2 placement group name)")] | None = None
    """AWS ODCR only: the existing cluster placement group the reservation was created in; the
    cluster launches into it and gpufleet creates no group."""
    reservation_in_placement_group: Any = None
    """Replaced by ``placement_group_name``; any value is refused with a migration message."""

    @field_validator("reservation_in_placement_group", mode="before")
    @classmethod
    def _replaced(cls, value: Any) -> None:
        raise ValueError(
            "was replaced by placement_group_name: a reservation stays in the cluster placement group it "
            "was created in, so name that group (capacity.placement_group_name: <name>) and gpufleet "
            "launches into it instead of creating one; a reservation made outside any group needs no name")
    reservation_bound: bool | None = None
    """GCP reservation from a future reservation: its VMs are reservation-bound (None: by machine family)."""

    @model_validator(mode="after")
    def _consistent(self) -> CapacitySpec:
        if self.type not in UNRESERVED and not self.reservation_id:
            raise ValueError(f"capacity type {self.type!r} needs reservation_id")
        if self.type in UNRESERVED and self.reservation_id:
            raise ValueError("reservation_id is only valid with type odcr, capacity_block or reservation")
        if self.type == "capacity_block" and self.placement_group:
            raise ValueError(
                "a Capacity Block cannot be combined with a placement group (the block is already "
                "co-located and launches into a placement group fail); set placement_group: false"
            )
        if self.placement_group_name is not None and (self.type != "odcr" or not self.placement_group):
            raise ValueError(
                "placement_group_name (an existing cluster placement group) is only valid with type odcr "
                "and placement_group: true"
            )
        return self


SpotShare = Annotated[float, Field(ge=0, le=1, description="a share between 0 and 1")]


class SpotSpec(StrictModel):
    """How much of an inference service may run on spot (preemptible) capacity.

    The placement may put up to ``max_fraction`` of a pool's maximum nodes on spot where a site
    offers spot for the type (``Site.spot_price_per_gpu_hour``), and only so far that the rest
    still carries the forecast peak after ``reclaim_fraction`` of the spot nodes are reclaimed at
    once during the service's worst declared zone or site loss: on-demand + (1 - reclaim_fraction) x
    spot, less that loss, >= the nodes the forecast peak needs (:func:`nodes_after_reclaim_and_losses`).
    With the default reclaim of 1.0 the on-demand part alone carries the peak (the pack's mandatory
    rule ``on-demand-floor-covers-peak`` checks it on the built resources).
    """

    max_fraction: SpotShare
    """Share of the pool's maximum nodes that may be spot (0: none)."""
    reclaim_fraction: SpotShare = 1.0
    """Share of the spot nodes assumed reclaimed at once (1.0: all of them, as AWS, Azure and GCP
    may reclaim every spot VM with no guarantee)."""


def spot_prices(nodes: int, rows: Sequence[Any], gpus_per_node: int, price: float | None,
                spot_price: float | None) -> dict[str, Any]:
    """A pool's ``usd_per_hour`` (its on-demand nodes at the site's price plus its spot nodes at the spot
    price; None when on-demand nodes have no price) and, with spot nodes among its placement ``rows``
    (assignments: ``zone``, ``nodes``, ``spot``), ``spot_nodes``, ``spot_nodes_by_zone`` and
    ``spot_usd_per_hour``."""
    spot_nodes = sum(a.nodes for a in rows if a.spot)
    on_demand = nodes - spot_nodes
    on_demand_usd = None if price is None else on_demand * gpus_per_node * price
    if not spot_nodes:
        return {"usd_per_hour": on_demand_usd}
    by_zone: dict[str, int] = {}
    for a in rows:
        if a.spot:
            by_zone[a.zone] = by_zone.get(a.zone, 0) + a.nodes
    spot_usd = spot_nodes * gpus_per_node * (spot_price or 0.0)  # a spot option always has its price
    total = None if on_demand_usd is None and on_demand else (on_demand_usd or 0.0) + spot_usd
    return {"usd_per_hour": total, "spot_nodes": spot_nodes, "spot_nodes_by_zone": by_zone,
            "spot_usd_per_hour": spot_usd}


SpotLossPool = tuple[str, "str | None", Mapping[str, int], Mapping[str, int]]
"""What a spot floor after losses depends on, per node group: (site, the site's ``failure_domain``,
its on-demand nodes per zone name of that site, its spot nodes per zone name)."""


def nodes_after_reclaim_and_losses(groups: Iterable[SpotLossPool], *, reclaim_fraction: float,
                                   zone_losses: int, site_losses: int) -> float:
    """What a service with spot keeps when the declared spot reclaim coincides with its worst declared
    loss: every on-demand node counts 1 and every spot node ``1 − reclaim_fraction``, per zone and per
    failure domain (:func:`gpufleet.sizing.loss_domains`); the fewer of what is left when the
    ``zone_losses`` heaviest zones fail and when the ``site_losses`` heaviest failure domains fail
    (everything, without losses: :func:`gpufleet.sizing.left_after_losses`).

    The one definition the placement's floor rows, the plan's and diff's figures and the pack's
    ``on-demand-floor-covers-peak`` rule share: it must be at least the nodes the forecast peak needs.
    """
    items = list(groups)
    od_zone, od_domain = loss_domains((s, d, od, sum(od.values())) for s, d, od, _ in items)
    spot_zone, spot_domain = loss_domains((s, d, spot, sum(spot.values())) for s, d, _, spot in items)
    keep = 1.0 - reclaim_fraction
    by_zone = {k: od_zone.get(k, 0) + keep * spot_zone.get(k, 0) for k in od_zone.keys() | spot_zone.keys()}
    by_domain = {k: od_domain.get(k, 0) + keep * spot_domain.get(k, 0) for k in od_domain.keys() | spot_domain.keys()}
    return round(left_after_losses(by_zone, by_domain, zone_losses=zone_losses, site_losses=site_losses), 9)


class SpotPool(Protocol):
    """What :func:`floor_after_losses` reads of a planned pool (:class:`gpufleet.plan.PoolPlan`)."""

    @property
    def site(self) -> str: ...
    @property
    def nodes_by_zone(self) -> dict[str, int]: ...
    @property
    def spot_nodes(self) -> int: ...
    @property
    def spot_nodes_by_zone(self) -> dict[str, int]: ...
    @property
    def spot_reclaim_fraction(self) -> float: ...


def floor_after_losses(pools: Sequence[SpotPool], failure_domains: Mapping[str, str | None], *,
                       zone_losses: int, site_losses: int) -> float | None:
    """A planned service's nodes left by :func:`nodes_after_reclaim_and_losses` (None without spot
    nodes): what ``gpufleet plan`` and ``gpufleet diff`` report beside the forecast peak."""
    if not any(p.spot_nodes for p in pools):
        return None
    groups = [(p.site, failure_domains.get(p.site), {z: n - p.spot_nodes_by_zone.get(z, 0) for z, n in p.nodes_by_zone.items()},
               p.spot_nodes_by_zone) for p in pools]
    return nodes_after_reclaim_and_losses(groups, reclaim_fraction=max(p.spot_reclaim_fraction for p in pools),
                                          zone_losses=zone_losses, site_losses=site_losses)

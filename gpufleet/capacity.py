"""Where capacity comes from: a training cluster's (on-demand, a reservation, a Capacity Block, or
GCP flex-start) and an inference service's spot share above its on-demand floor.

Pure: no I/O, no Pulumi. :class:`gpufleet.spec.TrainingSpec` carries a :class:`CapacitySpec` as
``capacity``; :class:`gpufleet.spec.InferenceSpec` a :class:`SpotSpec` as ``spot``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

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
    once: on-demand + (1 - reclaim_fraction) x spot >= the nodes the forecast peak needs. With the
    default reclaim of 1.0 the on-demand part alone carries the peak (the pack's mandatory rule
    ``on-demand-floor-covers-peak`` checks it on the built resources).
    """

    max_fraction: SpotShare
    """Share of the pool's maximum nodes that may be spot (0: none)."""
    reclaim_fraction: SpotShare = 1.0
    """Share of the spot nodes assumed reclaimed at once (1.0: all of them, as AWS, Azure and GCP
    may reclaim every spot VM with no guarantee)."""


def spot_prices(nodes: int, spot_nodes: int, gpus_per_node: int, price: float | None,
                spot_price: float | None) -> dict[str, Any]:
    """A pool's ``usd_per_hour`` (its on-demand nodes at the site's price plus its spot nodes at the spot
    price; None when on-demand nodes have no price) and, with spot nodes, ``spot_nodes`` and
    ``spot_usd_per_hour``."""
    on_demand = nodes - spot_nodes
    on_demand_usd = None if price is None else on_demand * gpus_per_node * price
    if not spot_nodes:
        return {"usd_per_hour": on_demand_usd}
    spot_usd = spot_nodes * gpus_per_node * (spot_price or 0.0)  # a spot option always has its price
    total = None if on_demand_usd is None and on_demand else (on_demand_usd or 0.0) + spot_usd
    return {"usd_per_hour": total, "spot_nodes": spot_nodes, "spot_usd_per_hour": spot_usd}

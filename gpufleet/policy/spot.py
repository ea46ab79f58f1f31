"""``on-demand-floor-covers-peak``: a service's on-demand capacity carries its forecast peak after the
declared spot reclaim coinciding with its worst declared zone or site loss
(:func:`gpufleet.capacity.nodes_after_reclaim_and_losses`, the plan's definition), and its spot share
stays within the declared ``spot.max_fraction``.

Pure (no Pulumi). The on-demand capacity is read from the resources, each cloud's reader saying which
part of a node group may be spot (:attr:`~gpufleet.policy.resources.NodeGroup.spot_nodes`,
``spot_group``): an ASG's instances distribution, an Azure Spot scale set, a GCP SPOT MIG. A value
that decides it but is unknown during a preview fails the rule closed. The peak is the one
:mod:`gpufleet.plan` floors spot with: the forecast demand at the end of the horizon (headroom
excluded) over a node's tokens/s, sized by :mod:`gpufleet.sizing` through
:mod:`gpufleet.policy.demand`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gpufleet.capacity import SpotLossPool, nodes_after_reclaim_and_losses
from gpufleet.sizing import peak_nodes
from gpufleet.policy.resources import Inventory, NodeGroup, Pool, as_number, cannot_verify, pick, spread
from gpufleet.policy.rules import (
    RuleResult,
    _lacks_demand,
    has_unknown,
    inference_needs,
    row_for,
    workloads_of,
)

NAME = "on-demand-floor-covers-peak"


def on_demand_max(g: NodeGroup) -> int | None:
    """A group's maximum less its spot nodes: its on-demand capacity (None when either is unknown)."""
    if g.spot_group:
        return 0
    if g.max_nodes is None or g.spot_nodes is None:
        return None
    return max(g.max_nodes - g.spot_nodes, 0)


def spot_loss_groups(inv: Inventory, pools: list[Pool]) -> list[SpotLossPool]:
    """Each node group as :func:`~gpufleet.capacity.nodes_after_reclaim_and_losses` reads it: its site,
    the site's failure domain, and its on-demand and spot capacity each spread over its zones."""
    out: list[SpotLossPool] = []
    for p in pools:
        site = inv.sites.get(p.site)
        domain = site.failure_domain if site and site.failure_domain else None
        for g in p.groups:
            zones = g.zones or ("(zone chosen by the cloud)",)
            on_demand = on_demand_max(g) or 0
            out.append((p.site or p.name, domain, spread(on_demand, zones),
                        spread((g.max_nodes or 0) - on_demand, zones)))
    return out


def _share(spot: Any, name: str, default: float) -> float:
    value = as_number(pick(spot, name)) if isinstance(spot, Mapping) else None
    return default if value is None else value


def check_on_demand_floor_covers_peak(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """For every inference service with spot capacity: on-demand + (1 − reclaim) × spot, after its worst
    declared zone or site loss, ≥ the peak, and spot ≤ ``max_fraction`` × its nodes (a service
    declaring no spot may have none)."""
    result = RuleResult()
    floors = config.get("floors") or {}
    for workload, _role, pools in workloads_of(inv, floors, role="inference"):
        if not pools:
            continue  # capacity-covers-demand reports a floor with nothing provisioned
        groups: list[NodeGroup] = [g for p in pools for g in p.groups]
        unread = [g for g in groups if on_demand_max(g) is None]
        if unread:
            result.unknown += [cannot_verify(f"{workload}: node group {g.name}",
                                             "its on-demand capacity (its maximum or its spot share)") for g in unread]
            continue
        total = sum(g.max_nodes or 0 for g in groups)
        on_demand = sum(on_demand_max(g) or 0 for g in groups)
        spot = total - on_demand
        if spot == 0:
            continue  # all on-demand: capacity-covers-demand judges it
        row = row_for(pools, result, "its on-demand floor")
        if row is None or has_unknown(pools, result):
            continue
        needs = inference_needs(workload, pools, row, floors, result)
        if _lacks_demand(workload, pools, needs, result):
            continue
        where = ", ".join(f"{g.name}: {on_demand_max(g)} on-demand of {g.max_nodes}" for g in groups)
        for need in needs:
            declared = need.demand.get("spot")
            max_fraction = _share(declared, "max_fraction", 0.0)
            reclaim = _share(declared, "reclaim_fraction", 1.0)
            if spot > max_fraction * total + 1e-9:
                allowed = math.floor(max_fraction * total + 1e-9)
                result.add(f"{workload}: {spot:,} of its {total:,} nodes may run on spot, above the "
                           f"{max_fraction:.0%} its demand allows ({allowed:,} nodes; demand {need.demand.source}); "
                           f"{where}", pools[0].urn, workload)
            peak = peak_nodes(need.sizing.demand_at_horizon_tokens_per_s, need.sizing.tokens_per_s_per_node)
            left = nodes_after_reclaim_and_losses(spot_loss_groups(inv, pools), reclaim_fraction=reclaim,
                                                  zone_losses=need.zone_losses, site_losses=need.site_losses)
            if left + 1e-9 < peak:
                short = math.ceil(peak - left - 1e-9)
                losses = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for n, kind in
                                   ((need.zone_losses, "zone"), (need.site_losses, "failure domain")) if n > 0)
                result.add(f"{workload}: after {reclaim:.0%} of its {spot:,} spot nodes are reclaimed"
                           f"{f' during its worst declared loss ({losses})' if losses else ''}, {left:,.1f} nodes "
                           f"remain ({on_demand:,} on-demand in all), but the forecast peak of "
                           f"{need.sizing.demand_at_horizon_tokens_per_s:,.0f} tokens/s needs {peak:,} "
                           f"({short:,} short; {need.sizing.tokens_per_s_per_node:,.0f} tokens/s per "
                           f"{row.instance_type} node; demand {need.demand.source}); {where}",
                           pools[0].urn, workload)
    return result


__all__ = ["NAME", "check_on_demand_floor_covers_peak", "on_demand_max", "peak_nodes", "spot_loss_groups"]

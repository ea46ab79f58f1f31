"""The diff prices spot as spot and shows each placement's spot share."""

from __future__ import annotations

from typing import Any

import pytest

from gpufleet.diff.figures import HOURS_PER_MONTH, workload_figures
from gpufleet.plan import build_plan
from gpufleet.spec import parse_fleet


def test_a_workloads_figures_carry_its_spot_share_and_spot_cost(fleet: dict[str, Any]) -> None:
    fleet["training"] = []
    fleet["sites"][0]["spot_price_per_gpu_hour"] = {"p5.48xlarge": 1.5}
    fleet["inference"][0]["spot"] = {"max_fraction": 0.5}
    fleet["inference"][0]["headroom"] = 1.0  # room above the peak for spot, in each of the two zones
    plan = build_plan(parse_fleet(fleet), check=False)
    (pool,) = plan.pools
    figures = workload_figures(plan, plan.workloads[0])
    (placement,) = figures.placements
    assert placement.spot_nodes == pool.spot_nodes > 0
    assert f"{pool.spot_nodes} of {pool.nodes} spot" in placement.label()
    data = figures.to_json()
    assert data["placements"][0]["spot_nodes"] == pool.spot_nodes
    assert data["spot_usd_per_month"] == pytest.approx(pool.nodes and pool.spot_nodes * 8 * 1.5 * HOURS_PER_MONTH)
    assert data["usd_per_month"] == pytest.approx((pool.usd_per_hour or 0) * HOURS_PER_MONTH)
    # what a reclaim during the worst zone loss leaves: the on-demand nodes of the zone that survives
    on_demand_by_zone = [n - pool.spot_nodes_by_zone.get(z, 0) for z, n in pool.nodes_by_zone.items()]
    surviving = sum(on_demand_by_zone) - max(on_demand_by_zone)
    assert data["floor_after_losses_tokens_per_s"] == pytest.approx(surviving * pool.tokens_per_s_per_node)
    assert data["floor_after_losses_tokens_per_s"] >= data["demand_at_horizon_tokens_per_s"]


def test_without_spot_the_figures_keep_their_keys(fleet: dict[str, Any]) -> None:
    plan = build_plan(parse_fleet(fleet), check=False)
    data = workload_figures(plan, plan.workloads[-1]).to_json()
    assert "spot_usd_per_month" not in data and "spot_nodes" not in data["placements"][0]
    assert "floor_after_losses_tokens_per_s" not in data

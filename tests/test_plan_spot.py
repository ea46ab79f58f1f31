"""Spot in the fleet spec and the plan: a service's spot share, priced at the site's spot price,
with the on-demand floor carrying the forecast peak after the declared reclaim."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpufleet.errors import SpecError
from gpufleet.plan import build_plan
from gpufleet.spec import parse_fleet

Run = Callable[..., tuple[int, str, str]]
ON_DEMAND, SPOT = 3.9, 1.5  # USD per GPU-hour of p5.48xlarge


def _spot_fleet(fleet: dict[str, Any], **spot: Any) -> dict[str, Any]:
    """The minimal fleet with spot offered, and headroom above its peak for spot to hold: the service
    survives losing one of its site's two zones, so the on-demand floor alone carries the peak in each."""
    fleet["training"] = []
    fleet["inference"][0]["headroom"] = 1.0
    fleet["sites"][0]["spot_price_per_gpu_hour"] = {"p5.48xlarge": SPOT}
    fleet["inference"][0]["spot"] = spot or {"max_fraction": 0.5}
    return fleet


def test_the_plan_puts_a_share_on_spot_and_prices_it_as_spot(fleet: dict[str, Any]) -> None:
    plan = build_plan(parse_fleet(_spot_fleet(fleet)), check=False)
    (pool,) = plan.pools
    peak = math.ceil(pool.sizing["demand_at_horizon_tokens_per_s"] / pool.tokens_per_s_per_node)
    assert 0 < pool.spot_nodes <= 0.5 * pool.nodes
    assert pool.on_demand_nodes >= peak  # reclaim 1.0: on-demand alone carries the peak
    on_demand_by_zone = [n - pool.spot_nodes_by_zone.get(z, 0) for z, n in pool.nodes_by_zone.items()]
    assert sum(on_demand_by_zone) - max(on_demand_by_zone) >= peak  # even with its worst zone lost
    assert pool.spot_usd_per_hour == pytest.approx(pool.spot_nodes * 8 * SPOT)
    assert pool.usd_per_hour == pytest.approx(pool.on_demand_nodes * 8 * ON_DEMAND + pool.spot_nodes * 8 * SPOT)
    without = build_plan(parse_fleet({**fleet, "inference": [{**fleet["inference"][0], "spot": None}]}), check=False)
    assert without.pools[0].spot_nodes == 0 and without.pools[0].spot_usd_per_hour is None
    assert plan.usd_per_hour < without.usd_per_hour


def test_a_smaller_reclaim_allows_a_larger_spot_share(fleet: dict[str, Any]) -> None:
    full = build_plan(parse_fleet(_spot_fleet(fleet, max_fraction=0.8)), check=False).pools[0]
    half = build_plan(parse_fleet(_spot_fleet(fleet, max_fraction=0.8, reclaim_fraction=0.5)), check=False).pools[0]
    assert half.spot_nodes > full.spot_nodes
    assert half.spot_reclaim_fraction == 0.5
    peak = math.ceil(half.sizing["demand_at_horizon_tokens_per_s"] / half.tokens_per_s_per_node)
    assert half.on_demand_nodes + 0.5 * half.spot_nodes >= peak


def test_plan_json_and_table_show_the_spot_share(run_cli: Run, write_stack: Callable[..., Path],
                                                 fleet: dict[str, Any]) -> None:
    path = write_stack(_spot_fleet(fleet))
    code, out, err = run_cli("plan", "--stack", str(path), "--json")
    assert code == 0, err
    (pool,) = json.loads(out)["pools"]
    assert pool["spot_nodes"] > 0 and pool["spot_usd_per_hour"] > 0
    code, out, _ = run_cli("plan", "--stack", str(path))
    assert code == 0 and f"({pool['spot_nodes']} spot)" in out


@pytest.mark.parametrize(("change", "loc"), [
    (lambda f: f["inference"][0].update(spot={"max_fraction": 1.5}), "fleet.inference[0].spot.max_fraction"),
    (lambda f: f["inference"][0].update(spot={"max_fraction": 0.5, "reclaim_fraction": -0.1}),
     "fleet.inference[0].spot.reclaim_fraction"),
    (lambda f: f["inference"][0].update(spot={"share": 0.5}), "fleet.inference[0].spot.max_fraction"),
    (lambda f: f["sites"][0].update(spot_price_per_gpu_hour={"ND96isr": 1.0}),
     "fleet.sites[0].spot_price_per_gpu_hour"),
    (lambda f: f["sites"][0].update(spot_price_per_gpu_hour={"Standard_ND96isr_H200_v5": 1.0}),
     "fleet.sites[0].spot_price_per_gpu_hour"),
    (lambda f: f["sites"][0].update(spot_quota_gpus={"H1000": 8}), "fleet.sites[0].spot_quota_gpus"),
    (lambda f: f["sites"][0].update(spot_quota_gpus={"H100": -1}), "fleet.sites[0].spot_quota_gpus.H100"),
])
def test_bad_spot_input_names_its_field(fleet: dict[str, Any], change: Any, loc: str) -> None:
    change(fleet)
    with pytest.raises(SpecError) as err:
        parse_fleet(fleet)
    assert loc in {i.loc for i in err.value.issues}, err.value


def test_spot_quota_caps_the_spot_share(fleet: dict[str, Any]) -> None:
    fleet = _spot_fleet(fleet)
    fleet["sites"][0]["spot_quota_gpus"] = {"H100": 8}
    (pool,) = build_plan(parse_fleet(fleet), check=False).pools
    assert pool.spot_nodes == 1


def test_spot_on_a_kubernetes_site_is_refused_until_node_pools_build_it(fleet: dict[str, Any]) -> None:
    from tests.test_platforms import on_kubernetes

    fleet = on_kubernetes(_spot_fleet(fleet))
    with pytest.raises(SpecError, match="builds no spot node pools yet") as err:
        build_plan(parse_fleet(fleet))
    assert err.value.issues[0].loc == "fleet.inference[0].spot"


def test_the_floor_keeps_the_peak_on_demand_in_the_zone_that_survives(fleet: dict[str, Any]) -> None:
    # 6 nodes over two zones, peak 2, one zone loss: reclaim alone would allow 3 spot (6 − 3 ≥ 2), but
    # with a zone lost as well each zone must keep 2 on-demand: 2 spot, one per zone.
    fleet = _spot_fleet(fleet)
    fleet["inference"][0]["headroom"] = 0.5
    plan = build_plan(parse_fleet(fleet), check=False)
    (pool,) = plan.pools
    assert (pool.nodes, pool.spot_nodes) == (6, 2)
    assert pool.spot_nodes_by_zone == {"us-east-1a": 1, "us-east-1b": 1}
    from gpufleet.capacity import floor_after_losses

    floor = floor_after_losses(plan.pools, {}, zone_losses=1, site_losses=0)
    assert floor == 2


def test_the_plan_table_shows_what_a_reclaim_during_the_worst_loss_leaves(
        run_cli: Run, write_stack: Callable[..., Path], fleet: dict[str, Any]) -> None:
    # the figure `gpufleet diff --json` gives as floor_after_losses_tokens_per_s
    fleet = _spot_fleet(fleet)
    fleet["inference"][0]["headroom"] = 0.5
    (pool,) = build_plan(parse_fleet(fleet), check=False).pools
    assert (pool.nodes, pool.spot_nodes) == (6, 2)  # one spot node per zone; a lost zone leaves 2 on-demand
    code, out, err = run_cli("plan", "--stack", str(write_stack(fleet)))
    assert code == 0, err
    carried = f"{2 * pool.tokens_per_s_per_node:,.0f}"
    assert f"carries {carried}" in " ".join(out.split()), out

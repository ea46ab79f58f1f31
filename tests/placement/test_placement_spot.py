"""Spot in the placement program: a share within ``max_fraction``, the rest carrying the peak after
the declared reclaim, priced at the site's spot price and capped by its spot quota."""

from __future__ import annotations

from typing import Any

import pytest

from gpufleet.errors import SpecError
from gpufleet.placement import PlacementProblem, solve


def _split(result: Any) -> tuple[int, int]:
    """(on-demand nodes, spot nodes) over every assignment."""
    return (sum(a.nodes for a in result.assignments if not a.spot),
            sum(a.nodes for a in result.assignments if a.spot))


def _solved(facts: Any, check: Any, data: dict[str, Any]) -> Any:
    """The checked placement of ``data``."""
    problem = PlacementProblem.model_validate(data)
    result = solve(problem, facts)
    check(problem, facts, result)
    return result


def _one_site(make_site: Any, make_pool: Any, *, spot: dict[str, Any] | None, peak: int | None = None,
              **site_kw: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {"survive_site_losses": 0}
    if spot is not None:
        kw["spot"] = spot
    if peak is not None:
        kw["peak_nodes"] = peak
    return {
        "sites": [make_site("s1", price_per_gpu_hour={"h8": 4.0}, **site_kw)],
        "pools": [make_pool("svc", "inference", 10, ["h8"], **kw)],
    }


def test_spot_fills_the_share_the_floor_leaves(facts, check, make_site, make_pool):
    # 10 nodes, peak 6, up to half spot at 1 USD/GPU-h (on-demand 4): the floor keeps 6 on-demand
    # and the share allows 5 spot, so 6 + 4 = 10 nodes; cost 6·8·4 + 4·8·1 = 224 USD/h.
    data = _one_site(make_site, make_pool, spot={"max_fraction": 0.5}, peak=6,
                     spot_price_per_gpu_hour={"h8": 1.0})
    result = _solved(facts, check, data)
    assert _split(result) == (6, 4)
    assert result.cost_per_hour == pytest.approx(224.0)
    assert {a.to_json().get("spot", False) for a in result.assignments} == {True, False}


def test_the_share_binds_when_the_peak_is_low(facts, check, make_site, make_pool):
    # Peak 2: the floor would allow 8 spot, but max_fraction 0.3 of 10 nodes allows 3.
    data = _one_site(make_site, make_pool, spot={"max_fraction": 0.3}, peak=2,
                     spot_price_per_gpu_hour={"h8": 1.0})
    result = _solved(facts, check, data)
    assert _split(result) == (7, 3)


def test_a_partial_reclaim_lets_more_run_on_spot(facts, check, make_site, make_pool):
    # Peak 8, all reclaimed: 8 on-demand + 2 spot. Half reclaimed: x + 0.5·s >= 8 with x + s = 10
    # gives s <= 4 (224 USD/h; 6 + 5 spot would cost 232).
    for reclaim, expected in ((1.0, (8, 2)), (0.5, (6, 4))):
        data = _one_site(make_site, make_pool, spot={"max_fraction": 0.5, "reclaim_fraction": reclaim}, peak=8,
                         spot_price_per_gpu_hour={"h8": 1.0})
        result = _solved(facts, check, data)
        assert _split(result) == expected, reclaim


def test_cheap_spot_may_outgrow_the_pool_when_little_is_reclaimed(facts, check, make_site, make_pool):
    # All spot allowed, half reclaimed, peak 8: 3 on-demand + 10 spot keeps 3 + 5 = 8 after the
    # reclaim and costs 3·32 + 10·8 = 176 USD/h, less than 10 nodes with 6 on-demand (224).
    data = _one_site(make_site, make_pool, spot={"max_fraction": 1.0, "reclaim_fraction": 0.5}, peak=8,
                     spot_price_per_gpu_hour={"h8": 1.0})
    result = _solved(facts, check, data)
    assert _split(result) == (3, 10)
    assert result.cost_per_hour == pytest.approx(176.0)


def test_no_spot_without_a_spot_price_or_a_share(facts, check, make_site, make_pool):
    for data in (_one_site(make_site, make_pool, spot={"max_fraction": 0.5}, peak=2),  # site offers no spot
                 _one_site(make_site, make_pool, spot=None, spot_price_per_gpu_hour={"h8": 1.0}),
                 _one_site(make_site, make_pool, spot={"max_fraction": 0.5},  # floor = nodes: nothing left
                           spot_price_per_gpu_hour={"h8": 1.0})):
        result = _solved(facts, check, data)
        assert _split(result) == (10, 0)


def test_spot_quota_caps_spot_and_not_on_demand(facts, check, make_site, make_pool):
    # Spot quota of 16 H100 = 2 nodes; the on-demand quota of 64 GPUs = 8 nodes still holds the rest.
    data = _one_site(make_site, make_pool, spot={"max_fraction": 0.5}, peak=2, quota_gpus={"H100": 64},
                     spot_price_per_gpu_hour={"h8": 1.0}, spot_quota_gpus={"H100": 16})
    result = _solved(facts, check, data)
    assert _split(result) == (8, 2)


def test_spot_dearer_than_on_demand_is_not_used(facts, check, make_site, make_pool):
    data = _one_site(make_site, make_pool, spot={"max_fraction": 0.5}, peak=2, spot_price_per_gpu_hour={"h8": 9.0})
    result = _solved(facts, check, data)
    assert _split(result) == (10, 0)


def test_spot_on_a_training_pool_is_refused(facts, make_site, make_pool):
    data = {"sites": [make_site("s1", spot_price_per_gpu_hour={"h8": 1.0})],
            "pools": [make_pool("t", "training", 2, ["h8"], spot={"max_fraction": 0.5}, peak_nodes=1)]}
    with pytest.raises(SpecError) as err:
        solve(PlacementProblem.model_validate(data), facts)
    assert {i.loc for i in err.value.issues} == {"pools[0].spot", "pools[0].peak_nodes"}


def test_a_spot_price_for_another_clouds_type_is_refused(facts, make_site, make_pool):
    data = _one_site(make_site, make_pool, spot={"max_fraction": 0.5}, spot_price_per_gpu_hour={"zh8": 1.0})
    with pytest.raises(SpecError) as err:
        solve(PlacementProblem.model_validate(data), facts)
    assert [i.loc for i in err.value.issues] == ["sites[0].spot_price_per_gpu_hour.zh8"]


def test_a_reclaim_during_a_site_loss_keeps_the_floor_on_demand_at_each_site(facts, check, make_site, make_pool):
    # 4 nodes surviving a site loss (4 at each of two sites), a floor of 4, half of it spot-able, spot
    # at s1 only. Spot on all of s1 (4 spot + 4 on-demand) meets the floor after a reclaim alone, but
    # with s2 lost too nothing on-demand is left: the floor keeps 4 on-demand at each site, no spot.
    data = {"sites": [make_site("s1", price_per_gpu_hour={"h8": 4.0}, spot_price_per_gpu_hour={"h8": 1.0}),
                      make_site("s2", price_per_gpu_hour={"h8": 4.0})],
            "pools": [make_pool("svc", "inference", 4, ["h8"], spot={"max_fraction": 0.5}, peak_nodes=4)]}
    result = _solved(facts, check, data)
    assert _split(result) == (8, 0)
    data["pools"][0]["peak_nodes"] = 2  # a floor of 2: 2 of s1's 4 may be spot, s2's 4 carry it alone
    result = _solved(facts, check, data)
    assert _split(result) == (6, 2)

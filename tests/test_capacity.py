"""gpufleet.capacity.nodes_after_reclaim_and_losses: what a service with spot keeps when the declared
reclaim coincides with its worst declared zone or site loss."""

from __future__ import annotations

import pytest

from gpufleet.capacity import SpotLossPool, nodes_after_reclaim_and_losses

def _left(groups: list[SpotLossPool], reclaim: float = 1.0, zones: int = 0, sites: int = 0) -> float:
    return nodes_after_reclaim_and_losses(groups, reclaim_fraction=reclaim, zone_losses=zones, site_losses=sites)


def test_a_three_zone_pool_loses_a_zone_of_its_on_demand_floor():
    # 9 on-demand (3 per zone) and 6 spot (2 per zone), peak 9. Reclaim alone leaves 9: enough, as the
    # rule without losses said. A zone lost with the reclaim leaves 6: 3 short.
    pool: list[SpotLossPool] = [("s1", None, {"a": 3, "b": 3, "c": 3}, {"a": 2, "b": 2, "c": 2})]
    assert _left(pool) == 9
    assert _left(pool, zones=1) == 6
    assert _left(pool, zones=2) == 3


def test_spot_that_survives_the_reclaim_counts_by_its_share():
    # Half the spot reclaimed: each zone keeps 3 + 0.5 × 2 = 4; losing one leaves 8.
    pool: list[SpotLossPool] = [("s1", None, {"a": 3, "b": 3, "c": 3}, {"a": 2, "b": 2, "c": 2})]
    assert _left(pool, reclaim=0.5) == 12
    assert _left(pool, reclaim=0.5, zones=1) == 8


def test_the_worse_of_a_zone_loss_and_a_site_loss():
    # Two sites in different failure domains: losing a site takes 6 on-demand, a zone at most 2.
    groups: list[SpotLossPool] = [("s1", "east", {"a": 2, "b": 2, "c": 2}, {"a": 1, "b": 1, "c": 1}),
              ("s2", "west", {"a": 1, "b": 1, "c": 1}, {})]
    assert _left(groups, zones=1) == 7
    assert _left(groups, sites=1) == 3
    assert _left(groups, zones=1, sites=1) == 3


def test_sites_sharing_a_failure_domain_fail_together_and_zone_names_do_not_collide():
    # The same zone names at two sites are two zones; one failure domain holds both sites.
    groups: list[SpotLossPool] = [("s1", "east", {"a": 2}, {}), ("s2", "east", {"a": 2}, {}), ("s3", None, {"a": 1}, {})]
    assert _left(groups, zones=1) == 3
    assert _left(groups, sites=1) == 1


@pytest.mark.parametrize("losses", [3, 5])
def test_losing_every_zone_leaves_nothing(losses):
    pool: list[SpotLossPool] = [("s1", None, {"a": 3, "b": 3, "c": 3}, {"a": 2, "b": 2, "c": 2})]
    assert _left(pool, zones=losses) == 0

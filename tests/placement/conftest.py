"""Placement test helpers: a tiny instance catalog and an independent checker of placements.

The checker re-derives every constraint from the problem and the result alone (it shares no code
with the solver), so a placement that passes it is feasible whatever the formulation says.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from gpufleet.placement import InstanceFacts, PlacementProblem, PlacementResult

# Round numbers so the optima can be checked by hand.
FACTS: dict[str, InstanceFacts] = {
    "h8": InstanceFacts("h8", "aws", "H100", 8, 10.0),  # 8 × H100, 10 kW
    "a8": InstanceFacts("a8", "aws", "A100", 8, 6.0),  # 8 × A100, 6 kW
    "l1": InstanceFacts("l1", "aws", "L4", 1, 0.5),  # 1 × L4, 0.5 kW
    "zh8": InstanceFacts("zh8", "azure", "H100", 8, 10.0),  # Azure 8 × H100, 10 kW
    "gh8": InstanceFacts("gh8", "gcp", "H100", 8, 10.0),  # GCP 8 × H100, 10 kW
}


def site(name: str, **kw: Any) -> dict[str, Any]:
    """A site dict with defaults: aws, region r1, two zones, 100 MW, PUE 1, no quota, unpriced."""
    out: dict[str, Any] = {
        "name": name,
        "cloud": "aws",
        "region": "r1",
        "zones": [f"{name}-a", f"{name}-b"],
        "power_mw": 100.0,
        "pue": 1.0,
    }
    out.update(kw)
    return out


def pool(name: str, role: str, nodes: int, types: list[str], **kw: Any) -> dict[str, Any]:
    """A pool dict; inference pools survive one site loss unless told otherwise (the scenarios
    here are about surviving a loss; the model's own default is the fleet spec's, 0)."""
    if role == "inference":
        kw.setdefault("survive_site_losses", 1)
    return {"name": name, "role": role, "nodes": nodes, "instance_types": types, **kw}


def verify(problem: PlacementProblem, facts: Mapping[str, InstanceFacts], result: PlacementResult) -> None:
    """Assert that ``result`` is a feasible placement of ``problem`` and that its totals are right."""
    assert result.status in ("optimal", "feasible"), result.explanation
    sites = {s.name: s for s in problem.sites}
    pools = {p.name: p for p in problem.pools}
    carbon_price = problem.carbon_price_per_tonne or 0.0
    kw_at_site: dict[str, float] = defaultdict(float)
    gpus_at_site: dict[tuple[str, str], int] = defaultdict(int)
    spot_gpus_at_site: dict[tuple[str, str], int] = defaultdict(int)
    by_pool: dict[str, list[Any]] = defaultdict(list)
    cost = 0.0
    for a in result.assignments:
        s, p, f = sites[a.site], pools[a.pool], facts[a.instance_type]
        assert a.nodes > 0
        assert a.zone in s.zones
        assert a.instance_type in p.instance_types
        assert f.cloud == s.cloud
        assert p.regions is None or s.region in p.regions
        assert p.sites is None or s.name in p.sites
        if a.spot:  # spot: the site's spot price and spot quota, an inference pool with a spot share
            assert p.spot is not None and a.instance_type in s.spot_price_per_gpu_hour
            price = s.spot_price_per_gpu_hour[a.instance_type]
            spot_gpus_at_site[(a.site, f.gpu)] += a.nodes * f.gpus
        else:
            prices = s.price_per_gpu_hour
            assert not prices or a.instance_type in prices, f"{a.instance_type} unpriced at {a.site}"
            price = prices[a.instance_type] if prices else 0.0
            gpus_at_site[(a.site, f.gpu)] += a.nodes * f.gpus
        kw = a.nodes * s.node_power_kw.get(a.instance_type, f.node_power_kw) * s.pue
        kw_at_site[a.site] += kw
        cost += a.nodes * f.gpus * price + carbon_price * kw * (s.carbon_g_per_kwh or 0.0) / 1e6
        by_pool[a.pool].append(a)
    for name, s in sites.items():
        assert kw_at_site[name] <= 1000 * s.power_mw + 1e-6, f"power over at {name}"
        assert math.isclose(result.site_power_mw[name], kw_at_site[name] / 1000, abs_tol=1e-5)
        for gpu, quota in s.quota_gpus.items():
            assert gpus_at_site[(name, gpu)] <= quota, f"{gpu} quota over at {name}"
        for gpu, quota in s.spot_quota_gpus.items():
            assert spot_gpus_at_site[(name, gpu)] <= quota, f"{gpu} spot quota over at {name}"
    for name, p in pools.items():
        placed = by_pool[name]
        total = sum(a.nodes for a in placed)
        if p.role == "training":
            if p.nodes == 0:
                assert not placed
                continue
            assert len({(a.site, a.zone, a.instance_type) for a in placed}) == 1, f"training pool {name} split"
            assert total == p.nodes
            if p.zone is not None:
                assert placed[0].zone == p.zone
            continue
        k = p.losses
        load: dict[str, int] = defaultdict(int)
        for a in placed:
            load[sites[a.site].failure_domain or f"site:{a.site}"] += a.nodes
        assert total >= p.nodes
        spot = sum(a.nodes for a in placed if a.spot)
        if p.spot is not None:  # at most max_fraction spot; the rest carries the floor after the reclaim
            assert spot <= p.spot.max_fraction * total + 1e-9, f"pool {name}: {spot} of {total} spot"
            assert total - p.spot.reclaim_fraction * spot >= p.floor_nodes - 1e-9, f"pool {name}: floor"
        for lost in itertools.combinations(sorted(load), min(k, len(load))):
            assert total - sum(load[d] for d in lost) >= p.nodes, f"pool {name} does not survive losing {lost}"
        if p.spot is not None:  # a reclaim during the worst site loss still leaves the floor
            kept: dict[str, float] = defaultdict(float)
            for a in placed:
                kept[sites[a.site].failure_domain or f"site:{a.site}"] += a.nodes * (1 - p.spot.reclaim_fraction * a.spot)
            for lost in itertools.combinations(sorted(kept), min(k, len(kept))):
                left = sum(kept.values()) - sum(kept[d] for d in lost)
                assert left >= p.floor_nodes - 1e-9, f"pool {name}: floor after a reclaim and losing {lost}"
        per_zone: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for a in placed:
            per_zone[a.site][a.zone] += a.nodes
        for site_name, zones in per_zone.items():
            counts = [zones.get(z, 0) for z in sites[site_name].zones]
            assert max(counts) - min(counts) <= 1, f"pool {name} unevenly spread over {site_name}"
    assert result.cost_per_hour is not None
    assert math.isclose(result.cost_per_hour, cost, rel_tol=1e-9, abs_tol=1e-6)


@pytest.fixture(scope="session")
def facts() -> dict[str, InstanceFacts]:
    return dict(FACTS)


@pytest.fixture(scope="session")
def check() -> Callable[[PlacementProblem, Mapping[str, InstanceFacts], PlacementResult], None]:
    return verify


@pytest.fixture(scope="session")
def make_site() -> Callable[..., dict[str, Any]]:
    return site


@pytest.fixture(scope="session")
def make_pool() -> Callable[..., dict[str, Any]]:
    return pool

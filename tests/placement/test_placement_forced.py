"""A placement with nothing to choose (every pool one usable option, no loss to survive) is taken without
solving the program, and is exactly what solving it gives; a fleet of such pools never loads SciPy
or NumPy."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gpufleet.placement.solver as solver
from gpufleet.placement import PlacementProblem, solve
from gpufleet.placement.forced import forced
from gpufleet.placement.milp import build_candidates
from tests.placement.test_placement_properties import SETTINGS, TYPES_BY_CLOUD, sites


@st.composite
def pinned_problems(draw: Any) -> dict[str, Any]:
    """Pools each pinned to one site, mostly with one type of its cloud and no loss to survive; some
    with a second type or a loss, so both paths are compared."""
    site_list = draw(sites(draw(st.integers(1, 4))))
    pools = []
    for j in range(draw(st.integers(1, 5))):
        home = draw(st.sampled_from(site_list))
        types = TYPES_BY_CLOUD[home["cloud"]]
        role = draw(st.sampled_from(["training", "inference"]))
        chosen = draw(st.lists(st.sampled_from(types), min_size=1, max_size=1 if draw(st.integers(0, 4)) else 2,
                               unique=True))
        pool: dict[str, Any] = {"name": f"p{j}", "role": role, "sites": [home["name"]], "instance_types": chosen,
                                "nodes": draw(st.integers(0, 12))}
        if role == "inference":
            pool["survive_site_losses"] = 0 if draw(st.integers(0, 4)) else 1
        pools.append(pool)
    data: dict[str, Any] = {"sites": site_list, "pools": pools}
    if draw(st.booleans()):
        data["carbon_price_per_tonne"] = draw(st.sampled_from([10.0, 100.0]))
    return data


@SETTINGS
@given(data=pinned_problems())
def test_a_forced_placement_is_what_the_program_gives(data: dict[str, Any], facts: Any) -> None:
    problem = PlacementProblem.model_validate(data)
    taken = solve(problem, facts)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(solver, "forced", lambda _cands: None)
        solved = solve(problem, facts)
    assert taken.to_json() == solved.to_json()
    if forced(build_candidates(problem, facts)) is not None:
        assert taken.status == "optimal" and taken.mip_gap == solved.mip_gap == 0.0


def test_a_choice_a_loss_or_a_broken_limit_goes_to_the_program(facts: Any) -> None:
    base: dict[str, Any] = {
        "sites": [{"name": "s0", "cloud": "aws", "region": "r1", "zones": ["a", "b"], "power_mw": 1.0, "pue": 1.0,
                   "quota_gpus": {"H100": 64}},
                  {"name": "s1", "cloud": "aws", "region": "r1", "zones": ["a"], "power_mw": 1.0, "pue": 1.0}],
        "pools": [{"name": "t", "role": "training", "nodes": 4, "instance_types": ["h8"], "sites": ["s0"]},
                  {"name": "i", "role": "inference", "nodes": 3, "instance_types": ["h8"], "sites": ["s0"],
                   "survive_site_losses": 0}],
    }

    def cands(change: Any) -> Any:
        data = json.loads(json.dumps(base))
        change(data)
        return build_candidates(PlacementProblem.model_validate(data), facts)

    placed = forced(cands(lambda d: None))
    assert placed is not None and [(o.instance_type, n) for o, n in placed] == [("h8", 4), ("h8", 3)]
    assert forced(cands(lambda d: d["pools"][1].update(sites=["s0", "s1"]))) is None  # two sites to choose from
    assert forced(cands(lambda d: d["pools"][1].update(instance_types=["h8", "a8"]))) is None  # two types
    assert forced(cands(lambda d: d["pools"][1].update(survive_site_losses=1))) is None  # a loss to survive
    assert forced(cands(lambda d: d["sites"][0]["quota_gpus"].update(H100=55))) is None  # 56 GPUs > 55
    assert forced(cands(lambda d: d["sites"][0].update(power_mw=0.069))) is None  # 70 kW > 69 kW


def test_planning_a_fleet_with_nothing_to_choose_never_loads_scipy_or_numpy() -> None:
    code = """
import sys
sys.path.insert(0, "benchmarks")
from fleets import big_fleet
from gpufleet.plan import build_plan
from gpufleet.spec import parse_fleet
plan = build_plan(parse_fleet(big_fleet(12)), "bench")
assert plan.placement["status"] == "optimal" and plan.pools, plan.placement
print(sorted(m for m in sys.modules if m.split(".")[0] in ("scipy", "numpy")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout

"""Input validation: every bad field reported at once, with its path, the bad value and what is allowed."""

from __future__ import annotations

import math
from typing import Any

import pytest

from gpufleet.errors import SpecError
from gpufleet.placement import InstanceFacts, PlacementProblem, parse_problem, solve
from gpufleet.placement.model import PoolSpec
from gpufleet.spec import InferenceLoad
from gpufleet.validation import format_loc


def _ok(make_site: Any, make_pool: Any) -> dict[str, Any]:
    return {
        "sites": [make_site("A", price_per_gpu_hour={"h8": 1.0}, quota_gpus={"H100": 64})],
        "pools": [make_pool("t", "training", 2, ["h8"]), make_pool("i", "inference", 2, ["l1"])],
    }


def _locs(err: SpecError) -> dict[str, Any]:
    return {issue.loc: issue for issue in err.issues}


def test_a_valid_problem_parses(make_site, make_pool):
    problem = parse_problem(_ok(make_site, make_pool))
    assert isinstance(problem, PlacementProblem)
    assert problem.pools[1].losses == 1 and problem.pools[0].losses == 0


def test_survive_site_losses_has_one_default_the_fleet_specs() -> None:
    unsaid = PoolSpec.model_validate({"name": "i", "role": "inference", "nodes": 2, "instance_types": ["l1"]})
    assert unsaid.losses == InferenceLoad.model_fields["survive_site_losses"].default == 0


def test_every_field_error_is_reported_at_once(make_site, make_pool):
    data = _ok(make_site, make_pool)
    data["sites"][0].update(power_mw=-1.0, pue=math.nan, bogus=1)
    data["sites"][0]["price_per_gpu_hour"]["p5.48xlarge"] = -2.0
    data["pools"].append({"name": "x", "role": "serving", "nodes": 2.5, "instance_types": []})
    data["pools"][0]["nodes"] = -3
    data["extra"] = True
    with pytest.raises(SpecError) as err:
        parse_problem(data, source="problem.json")
    issues = _locs(err.value)
    assert set(issues) == {
        "sites[0].power_mw",
        "sites[0].pue",
        "sites[0].bogus",
        'sites[0].price_per_gpu_hour["p5.48xlarge"]',
        "pools[0].nodes",
        "pools[2].role",
        "pools[2].nodes",
        "pools[2].instance_types",
        "extra",
    }
    assert "got -3" in issues["pools[0].nodes"].message and issues["pools[0].nodes"].hint == "a number >= 0"
    assert "got 'serving'" in issues["pools[2].role"].message
    assert issues["pools[2].role"].hint == "'training' or 'inference'"
    assert "got nan" in issues["sites[0].pue"].message and issues["sites[0].pue"].hint == "a finite number"
    assert issues["sites[0].bogus"].message == "unknown field"
    assert "power_mw" in issues["sites[0].bogus"].hint
    assert "carbon_price_per_tonne" in issues["extra"].hint
    assert str(err.value).startswith("problem.json: 9 errors in the input")


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ([], "(top level)"),  # not an object
        ({"pools": []}, "sites"),  # missing
        ({"sites": [], "pools": []}, "sites"),  # no site at all
    ],
)
def test_shape_errors(data, loc):
    with pytest.raises(SpecError) as err:
        parse_problem(data)
    assert loc in _locs(err.value)


def test_strict_types_reject_booleans_and_strings_as_numbers(make_site, make_pool):
    data = _ok(make_site, make_pool)
    data["pools"][0]["nodes"] = True
    data["sites"][0]["power_mw"] = "5"
    with pytest.raises(SpecError) as err:
        parse_problem(data)
    assert set(_locs(err.value)) == {"pools[0].nodes", "sites[0].power_mw"}


def test_cross_field_errors_are_collected_against_the_instance_facts(facts, make_site, make_pool):
    data = {
        "sites": [
            make_site("A", quota_gpus={"H10O": 8}, price_per_gpu_hour={"h8": 1.0, "zh8": 1.0}),
            make_site("A", zones=["z", "z"], node_power_kw={"gh8": 9.0}),
        ],
        "pools": [
            make_pool("t", "training", 2, ["h88", "h8", "h8"], survive_site_losses=1, regions=["r9"]),
            make_pool("t", "inference", 2, ["l1"], zone="A-a"),
            make_pool("u", "training", 2, ["h8"], zone="nowhere", sites=["A", "B"]),
        ],
    }
    problem = PlacementProblem.model_validate(data)
    with pytest.raises(SpecError) as err:
        solve(problem, facts)
    issues = _locs(err.value)
    assert set(issues) == {
        "sites[0].quota_gpus.H10O",
        "sites[0].price_per_gpu_hour.zh8",
        "sites[1].name",
        "sites[1].zones",
        "pools[0].instance_types[0]",
        "pools[0].instance_types",
        "pools[0].regions[0]",
        "pools[0].survive_site_losses",
        "pools[1].name",
        "pools[1].zone",
        "pools[2].zone",
        "pools[2].sites[1]",
        "sites[1].node_power_kw.gh8",
    }
    assert "did you mean 'h8'" in issues["pools[0].instance_types[0]"].message
    assert "did you mean 'H100'" in issues["sites[0].quota_gpus.H10O"].message
    assert "'zh8' runs on azure, but site 'A' is on aws" in issues["sites[0].price_per_gpu_hour.zh8"].message
    assert issues["pools[0].regions[0]"].hint == "r1"


def test_unknown_instance_type_against_the_shipped_catalog(make_site, make_pool):
    data = {
        "sites": [make_site("A")],
        "pools": [make_pool("t", "training", 1, ["p5.48xlarg"])],
    }
    with pytest.raises(SpecError) as err:
        solve(PlacementProblem.model_validate(data))
    [issue] = err.value.issues
    assert issue.loc == "pools[0].instance_types[0]"
    assert "'p5.48xlarg'" in issue.message and "p5.48xlarge" in issue.message
    assert "gpufleet catalog" in issue.hint


def test_catalog_facts_are_used_when_none_are_given(make_site, make_pool):
    data = {
        "sites": [make_site("A", price_per_gpu_hour={"p5.48xlarge": 3.0})],
        "pools": [make_pool("t", "training", 2, ["p5.48xlarge"])],
    }
    result = solve(PlacementProblem.model_validate(data))
    assert result.status == "optimal"
    assert result.cost_per_hour == pytest.approx(2 * 8 * 3.0)  # p5.48xlarge carries 8 H100


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("pools", 2, "nodes"), "pools[2].nodes"),
        (("sites", 0, "price_per_gpu_hour", "p5.48xlarge"), 'sites[0].price_per_gpu_hour["p5.48xlarge"]'),
        (("sites", 1, "quota_gpus", "H100"), "sites[1].quota_gpus.H100"),
        ((), "(top level)"),
    ],
)
def test_format_loc(loc, expected):
    assert format_loc(loc) == expected


def test_instance_facts_are_frozen():
    f = InstanceFacts("x", "aws", "H100", 8, 10.0)
    with pytest.raises(AttributeError):
        f.gpus = 4  # type: ignore[misc]


def test_no_pulumi_in_the_placement_package():
    import pathlib

    import gpufleet.placement as package

    root = pathlib.Path(package.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import pulumi" not in text and "from pulumi" not in text, path


def test_sites_are_the_fleet_spec_sites(make_site, make_pool):
    from gpufleet.spec import Site

    site = make_site("A")
    del site["pue"]
    problem = parse_problem({"sites": [site], "pools": [make_pool("t", "training", 1, ["h8"])]})
    assert isinstance(problem.sites[0], Site) and problem.sites[0].pue == 1.2  # the spec's default
    site["cloud"] = "oracle"
    with pytest.raises(SpecError) as err:
        parse_problem({"sites": [site], "pools": []})
    [issue] = err.value.issues
    assert issue.loc == "sites[0].cloud" and "'aws', 'azure' or 'gcp'" in issue.hint

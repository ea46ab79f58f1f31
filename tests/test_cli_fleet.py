"""``gpufleet fleet check``: stacks planned apart, their draws added up at the sites they share."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import minimal_fleet

Run = Callable[..., tuple[int, str, str]]


def stack(directory: Path, name: str, fleet: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": {"gpufleet:fleet": fleet}}, sort_keys=False))
    return path


def team(name: str, *, power_mw: float = 5.0, quota: int = 512) -> dict[str, Any]:
    """The minimal fleet (0.073 MW, 48 H100 at aws-use1) with its workloads renamed for one team."""
    fleet = copy.deepcopy(minimal_fleet())
    fleet["sites"][0] |= {"power_mw": power_mw, "quota_gpus": {"H100": quota}}
    for w in (*fleet["training"], *fleet["inference"]):
        w["name"] = f"{name}-{w['name']}"
    return fleet


def own_draw(run_cli: Run, path: Path) -> float:
    code, out, _ = run_cli("plan", "--stack", str(path), "--json")
    assert code == 0
    [site] = json.loads(out)["sites"]
    return float(site["power_mw"])


def test_stacks_that_fit_alone_but_not_together_are_over(tmp_path: Path, run_cli: Run) -> None:
    a = stack(tmp_path / "stacks", "a", team("a", power_mw=0.1))
    b = stack(tmp_path / "stacks", "b", team("b", power_mw=0.1))
    assert own_draw(run_cli, a) < 0.1 and own_draw(run_cli, b) < 0.1
    code, out, err = run_cli("fleet", "check", str(tmp_path / "stacks"), "--json")
    assert code == 3, err
    [site] = json.loads(out)["sites"]
    assert (site["name"], site["over"], site["power_mw"]) == ("aws-use1", True, 0.1)
    assert site["power_mw_used"] == pytest.approx(own_draw(run_cli, a) + own_draw(run_cli, b))
    assert [s["name"] for s in site["stacks"]] == ["a", "b"]
    assert site["gpus_used"] == {"H100": 96} and site["quota_over"] == {}


def test_every_site_fits(tmp_path: Path, run_cli: Run) -> None:
    third = team("c")
    third["sites"][0] |= {"name": "aws-use1-b", "network_cidr": "10.1.0.0/16"}
    paths = [stack(tmp_path, n, f) for n, f in (("a", team("a")), ("b", team("b")), ("c", third))]
    code, out, _ = run_cli("fleet", "check", *map(str, paths))
    assert code == 0
    assert "aws-use1-b" in out and "Every site fits." in out and "OVER" not in out


def test_the_title_counts_one_stack_and_one_site_in_the_singular(tmp_path: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("fleet", "check", str(stack(tmp_path, "a", team("a"))))
    assert code == 0
    assert "gpufleet fleet check: 1 stack, 1 site" in out


def test_a_gpu_quota_shared_by_stacks(tmp_path: Path, run_cli: Run) -> None:
    for name in ("a", "b"):
        stack(tmp_path, name, team(name, quota=80))
    code, out, _ = run_cli("fleet", "check", str(tmp_path))
    assert code == 3
    assert "OVER aws-use1: 96 H100 over 2 stack(s) exceed the quota of 80 by 16 (a 48, b 48)" in out


def test_a_site_declared_differently_is_bad_input_naming_both_files(tmp_path: Path, run_cli: Run) -> None:
    a = stack(tmp_path, "a", team("a", power_mw=5.0))
    b = stack(tmp_path, "b", team("b", power_mw=6.0))
    code, out, err = run_cli("fleet", "check", str(tmp_path), "--json")
    assert (code, out) == (2, "")
    assert f"site 'aws-use1' is declared differently in {a} and {b}: power_mw 5.0 in {a}, 6.0 in {b}" in err


@pytest.mark.parametrize("setup, message", [
    (lambda d: stack(d, "bad", {"sites": []}), "Pulumi.bad.yaml: 1 error in the input"),
    (lambda d: (d / "empty").mkdir(), "holds no Pulumi.*.yaml file"),
    (lambda d: None, "no such stack file or directory"),
])
def test_bad_input_exits_2(tmp_path: Path, run_cli: Run, setup: Any, message: str) -> None:
    stack(tmp_path, "a", team("a"))
    setup(tmp_path)
    extra = {"holds no Pulumi.*.yaml file": "empty", "no such stack file or directory": "missing"}.get(message, "")
    code, out, err = run_cli("fleet", "check", str(tmp_path), *([str(tmp_path / extra)] if extra else []))
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err


def test_emitted_policy_config_carries_the_other_stacks_draw(tmp_path: Path, run_cli: Run) -> None:
    for name in ("a", "b"):
        stack(tmp_path / "stacks", name, team(name))
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"power-within-envelope": {"max_utilization": 0.9}}))
    out_dir = tmp_path / "out" / "policy"
    code, _, _ = run_cli("fleet", "check", str(tmp_path / "stacks"), "--emit-policy-config", str(out_dir),
                         "--policy-config", str(base))
    assert code == 0
    config = json.loads((out_dir / "a.json").read_text())
    assert config["power-within-envelope"] == {"max_utilization": 0.9}
    site = config["shared-site-limits"]["sites"]["aws-use1"]
    assert (site["power_mw"], site["quota_gpus"], list(site["other_stacks"])) == (5.0, {"H100": 512}, ["b"])
    assert site["other_stacks"]["b"]["gpus"] == {"H100": 48}
    base.write_text(json.dumps({"shared-site-limits": {"sites": {}}}))
    code, _, err = run_cli("fleet", "check", str(tmp_path / "stacks"), "--emit-policy-config", str(out_dir),
                           "--policy-config", str(base))
    assert code == 2 and "is written by `gpufleet fleet check`" in err


@pytest.mark.parametrize("power_mw, code", [(0.1, 3), (5.0, 0)])
def test_the_emitted_config_blocks_or_passes_the_preview(tmp_path: Path, run_cli: Run, power_mw: float,
                                                         code: int) -> None:
    for name in ("a", "b"):
        stack(tmp_path / "stacks", name, team(name, power_mw=power_mw))
    check_code, _, _ = run_cli("fleet", "check", str(tmp_path / "stacks"), "--emit-policy-config", str(tmp_path / "p"))
    assert check_code == code
    got, out, err = run_cli("preview", "--stack", str(tmp_path / "stacks" / "Pulumi.a.yaml"), "--policy-config",
                            str(tmp_path / "p" / "a.json"), "--format", "json")
    violations = [v for v in json.loads(out)["violations"] if v["policy"] == "shared-site-limits"]
    assert got == code, err
    if code:
        [v] = violations
        assert v["enforcement"] == "mandatory"
        assert v["message"].startswith("aws-use1: 0.15 MW at full scale over 2 stack(s) exceeds the 0.1 MW envelope")
    else:
        assert violations == []


def test_an_infeasible_stack_is_named_and_the_rest_still_summed(tmp_path: Path, run_cli: Run) -> None:
    a = stack(tmp_path, "a", team("a"))
    greedy = team("b")
    greedy["inference"][0]["peak_tokens_per_s"] = 10_000_000  # needs far more than the 512 H100 of quota
    b = stack(tmp_path, "b", greedy)
    third = team("c")
    third["sites"][0] |= {"name": "aws-use1-b", "network_cidr": "10.1.0.0/16"}
    stack(tmp_path, "c", third)
    code, out, err = run_cli("fleet", "check", str(tmp_path), "--json")
    assert code == 3
    assert f"error: {b}: no feasible placement" in err
    data = json.loads(out)
    assert [(s["name"], s["status"]) for s in data["stacks"]] == [("a", "planned"), ("b", "infeasible"),
                                                                    ("c", "planned")]
    shared, other = data["sites"]
    assert (shared["name"], shared["not_counted"], [s["name"] for s in shared["stacks"]]) == ("aws-use1", ["b"], ["a"])
    assert shared["power_mw_used"] == pytest.approx(own_draw(run_cli, a))
    assert (other["name"], other["not_counted"]) == ("aws-use1-b", [])
    code, out, _ = run_cli("fleet", "check", str(tmp_path), "--emit-policy-config", str(tmp_path / "out"))
    assert code == 3
    assert "aws-use1-b" in out and "unknown (without b)" in out
    assert f"INFEASIBLE b ({b}): no feasible placement; its draw at aws-use1 is not counted above" in out
    assert not (tmp_path / "out").exists()  # the other stacks' configs would leave b's draw out


def test_the_repositorys_own_stacks_declare_their_shared_sites_alike_and_fit(run_cli: Run) -> None:
    """docs/fleets.md shows `gpufleet fleet check stacks/`: on the shipped stacks it runs and passes."""
    repo = Path(__file__).resolve().parents[1]
    code, out, err = run_cli("fleet", "check", str(repo / "stacks"), "--json")
    assert code == 0, err
    data = json.loads(out)
    shared = {s["name"]: [x["name"] for x in s["stacks"]] for s in data["sites"] if len(s["stacks"]) > 1}
    assert shared == {"aws-use1": ["dev", "prod"], "azure-eastus2": ["azure-inference", "prod"],
                      "gcp-usc1": ["dev", "gcp-a3ultra", "prod"]}
    assert not data["over"] and all(s["status"] == "planned" for s in data["stacks"])

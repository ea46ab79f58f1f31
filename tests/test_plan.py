"""The plan: sizing and placement together, as `gpufleet plan` shows them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpufleet.errors import InfeasiblePlanError, SpecError
from gpufleet.plan import build_plan
from gpufleet.sizing import capacity_after_losses
from gpufleet.spec import parse_fleet
from gpufleet.stackfile import load_stack

REPO = Path(__file__).resolve().parents[1]
Run = Callable[..., tuple[int, str, str]]


def test_minimal_plan_sizes_and_places(fleet: dict[str, Any]) -> None:
    plan = build_plan(parse_fleet(fleet), "t")
    train = plan.pools_of("pretrain")
    assert len(train) == 1
    (t,) = train
    assert t.role == "training" and len(t.zones) == 1 and t.instance_type == "p5.48xlarge"
    assert t.nodes == t.min_nodes and t.gpus == t.nodes * 8
    assert t.fabric == "efa" and t.fabric_interfaces == 32
    chat = plan.pools_of("chat")
    assert chat and all(p.role == "inference" for p in chat)
    w = next(w for w in plan.workloads if w.name == "chat")
    # 1 zone of 2 may fail: the plan holds twice what the peak needs, spread evenly.
    assert w.nodes_provisioned >= 2 * w.nodes_needed
    by_zone = {z: n for p in chat for z, n in p.nodes_by_zone.items()}
    assert capacity_after_losses(by_zone, 1) >= w.nodes_needed
    assert all(1 <= p.min_nodes <= p.nodes for p in chat)


def test_power_and_cost_follow_the_pools(fleet: dict[str, Any]) -> None:
    plan = build_plan(parse_fleet(fleet), "t")
    site = plan.sites[0]
    assert site.power_mw == pytest.approx(sum(p.nodes * p.node_power_kw * p.pue for p in plan.pools) / 1000)
    assert site.power_mw <= site.envelope_mw
    assert plan.usd_per_hour == pytest.approx(sum(p.nodes * 8 * 3.9 for p in plan.pools))


def test_site_node_power_override_is_used(fleet: dict[str, Any]) -> None:
    fleet["sites"][0]["node_power_kw"] = {"p5.48xlarge": 12.5}
    plan = build_plan(parse_fleet(fleet), "t")
    assert {p.node_power_kw for p in plan.pools} == {12.5}


def test_azure_training_splits_into_infiniband_islands() -> None:
    fleet = {
        "sites": [{"name": "az", "cloud": "azure", "region": "eastus", "zones": ["1"], "power_mw": 50}],
        "training": [{"name": "big", "params": 7e10, "tokens": 2e12, "gpu": "H100", "deadline_days": 20,
                      "mfu": 0.4, "nodes": 250, "allow_multiple_islands": True}],
    }
    (pool,) = build_plan(parse_fleet(fleet), "t").pools
    assert pool.instance_type == "Standard_ND96isr_H100_v5"
    assert pool.islands == (84, 83, 83) and sum(pool.islands) == 250
    assert pool.allow_multiple_islands is True and pool.max_nodes_per_island == 100
    assert build_plan(parse_fleet(fleet), "t").to_json()["pools"][0]["islands"] == [84, 83, 83]
    fleet["training"][0]["allow_multiple_islands"] = False  # the default: one island or a refusal
    with pytest.raises(SpecError) as err:
        build_plan(parse_fleet(fleet), "t")
    assert [i.loc for i in err.value.issues] == ["fleet.training[0].allow_multiple_islands"]
    assert "needs 3 InfiniBand islands (84+83+83 VMs; one island holds at most 100 VMs)" in str(err.value)


def test_power_shortfall_is_infeasible_with_the_site_named(fleet: dict[str, Any]) -> None:
    fleet["sites"][0]["power_mw"] = 0.05
    with pytest.raises(InfeasiblePlanError) as exc:
        build_plan(parse_fleet(fleet), "t")
    assert "aws-use1" in str(exc.value) and "MW" in str(exc.value)


def test_model_that_fits_no_node_is_a_spec_error(fleet: dict[str, Any]) -> None:
    fleet["inference"][0]["model"]["params"] = 5e13
    with pytest.raises(SpecError, match=r"fleet.inference\[0\].model"):
        build_plan(parse_fleet(fleet), "t")


def test_same_spec_gives_the_same_plan(fleet: dict[str, Any]) -> None:
    a = build_plan(parse_fleet(fleet), "t").to_json()
    b = build_plan(parse_fleet(fleet), "t").to_json()
    a["placement"].pop("solve_seconds")
    b["placement"].pop("solve_seconds")
    assert a == b


def test_plan_json_contract(run_cli: Run) -> None:
    code, out, _ = run_cli("plan", "--stack", str(REPO / "stacks" / "Pulumi.dev.yaml"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["stack"] == "dev"
    clouds = {p["cloud"] for p in data["pools"]}
    assert clouds == {"aws", "gcp"} or clouds == {"aws", "azure", "gcp"}
    for pool in data["pools"]:
        for key in ("workload", "role", "cloud", "site", "instance_type", "nodes", "gpus", "demand", "power_kw",
                    "sizing"):
            assert key in pool, key
        assert pool["sizing"]["catalog"]["source"].startswith("https://")


def test_plan_table(run_cli: Run) -> None:
    code, out, _ = run_cli("plan", "--stack", str(REPO / "stacks" / "Pulumi.dev.yaml"))
    assert code == 0
    assert "chat-8b" in out and "pretrain-8b" in out and "Sites: power and quota" in out


def test_infeasible_stack_exits_3(run_cli: Run, write_stack: Callable[..., Path], fleet: dict[str, Any]) -> None:
    fleet["sites"][0]["quota_gpus"] = {"H100": 8}
    code, out, err = run_cli("plan", "--stack", str(write_stack(fleet)))
    assert code == 3 and out == ""
    assert "H100" in err and "aws-use1" in err


def test_build_plan_refuses_what_the_clouds_refuse_unless_the_caller_checks_it() -> None:
    _, spec = load_stack(REPO / "tests" / "fixtures" / "stacks" / "Pulumi.bad-vnet.yaml")
    with pytest.raises(SpecError) as err:
        build_plan(spec, "bad-vnet")
    assert [i.loc for i in err.value.issues] == ["fleet.sites[0].network_cidr"]
    assert "overlaps 172.16.0.0/16" in str(err.value)
    assert build_plan(spec, "bad-vnet", check=False).gpus > 0  # the program checks it with its config


def test_plan_checks_the_image_overrides_the_stack_file_carries(
        run_cli: Run, write_stack: Callable[..., Path], fleet: dict[str, Any]) -> None:
    path = write_stack(fleet, extra={"gpufleet:images": {"nope": "ami-0123", "pretrain": "ubuntu"}})
    code, out, err = run_cli("plan", "--stack", str(path))
    assert code == 2 and out == ""
    assert "config.gpufleet:images.nope: no pool or workload named 'nope'" in err
    assert "config.gpufleet:images.pretrain: AWS image 'ubuntu' is neither an AMI id nor an SSM parameter name" in err
    ok = write_stack(fleet, name="ok", extra={"gpufleet:images": {"pretrain": "ami-0123"}})
    assert run_cli("plan", "--stack", str(ok))[0] == 0


def test_plan_checks_the_ssh_key_as_the_offline_preview_does(run_cli: Run, tmp_path: Path) -> None:
    text = (REPO / "tests" / "fixtures" / "stacks" / "Pulumi.bad-vnet.yaml").read_text()
    text = text.replace("172.16.0.0/16", "10.20.0.0/16")
    unset = tmp_path / "Pulumi.unset.yaml"
    unset.write_text(text)  # no key: the preview's placeholder key, which a preview accepts
    assert run_cli("plan", "--stack", str(unset))[0] == 0
    bad = tmp_path / "Pulumi.bad-key.yaml"
    bad.write_text(text.replace("config:\n", "config:\n  gpufleet:sshPublicKey: not a key\n"))
    code, _, err = run_cli("plan", "--stack", str(bad))
    assert code == 2 and "config.gpufleet:sshPublicKey: is not an OpenSSH public key" in err


@pytest.mark.parametrize("stack", sorted(p.name for p in (REPO / "stacks").glob("Pulumi.*.yaml")))
def test_every_shipped_stack_plans(stack: str) -> None:
    name, spec = load_stack(REPO / "stacks" / stack)
    plan = build_plan(spec, name)
    assert plan.gpus > 0
    for site in plan.sites:
        assert site.power_mw <= site.envelope_mw + 1e-9


def _two_memory_fleet(instance_types: list[str]) -> dict[str, Any]:
    """A 70B service (150.7 GB of weights and KV cache) allowed on p5.48xlarge (80 GiB per GPU) at a
    cheap AWS site and, where listed, a3-highgpu-8g (74.51 GiB) at a dear GCP one."""
    return {
        "sites": [
            {"name": "aws-use1", "cloud": "aws", "region": "us-east-1", "zones": ["us-east-1a", "us-east-1b"],
             "power_mw": 20.0, "quota_gpus": {"H100": 4096}, "price_per_gpu_hour": {"p5.48xlarge": 3.93},
             "network_cidr": "10.10.0.0/16"},
            {"name": "gcp-usc1", "cloud": "gcp", "region": "us-central1", "zones": ["us-central1-a", "us-central1-b"],
             "power_mw": 20.0, "quota_gpus": {"H100": 4096}, "price_per_gpu_hour": {"a3-highgpu-8g": 9.0},
             "network_cidr": "10.30.0.0/16", "project": "gpufleet-serving"},
        ],
        "inference": [{"name": "chat", "model": {"params": 7e10, "layers": 80, "kv_heads": 8, "head_dim": 128,
                                                 "dtype": "bf16"},
                       "context_tokens": 8192, "concurrency": 4, "tokens_per_s_per_replica": 3000, "gpu": "H100",
                       "instance_types": instance_types, "peak_tokens_per_s": 40_000, "growth_per_month": 0.0,
                       "lead_time_days": 30, "horizon_days": 30, "headroom": 0.2}],
    }


def test_a_replica_fits_the_smallest_gpu_memory_of_its_candidate_types() -> None:
    # 80 GiB GPUs hold 150.7 GB on 2 (2 × 72 GiB usable = 154.6 GB); 74.51 GiB ones need 4 (2 × 67.1
    # GiB = 144 GB). Allowed both, the plan fits at 74.51 GiB before placement, so a replica holds the
    # model on either type, though the placement picks p5.48xlarge.
    from gpufleet.catalog import load_catalog
    from gpufleet.plan import allowed_sites, candidate_types, service_memory

    alone = build_plan(parse_fleet(_two_memory_fleet(["p5.48xlarge"])), "t", check=False)
    assert alone.workloads[0].sizing["gpus_per_replica"] == 2
    spec = parse_fleet(_two_memory_fleet(["p5.48xlarge", "a3-highgpu-8g"]))
    both = build_plan(spec, "t", check=False)
    assert {p.instance_type for p in both.pools} == {"p5.48xlarge"}
    assert both.workloads[0].sizing["gpus_per_replica"] == 4
    assert both.workloads[0].nodes_needed == 2 * alone.workloads[0].nodes_needed  # 2 replicas a node, not 4
    # the public functions are the plan's own: what the backtest re-plans with
    catalog = load_catalog()
    [w] = spec.inference
    types = candidate_types(w, allowed_sites(w, spec), catalog, "fleet.inference[0]")
    assert [r.instance_type for r in types] == ["p5.48xlarge", "a3-highgpu-8g"]
    assert service_memory(w, types, catalog).gpus_per_replica == 4

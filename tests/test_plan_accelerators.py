"""Plans on TPUs and Trainium: slices, chips counted as GPUs for quota and power, the spec's ``accelerator:``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gpufleet.errors import InfeasiblePlanError, SpecError
from gpufleet.plan import build_plan
from gpufleet.spec import parse_fleet
from gpufleet.stackfile import read_config

REPO = Path(__file__).resolve().parents[1]
TPU_STACK = REPO / "stacks" / "Pulumi.gcp-tpu.yaml"


def tpu_fleet() -> dict[str, Any]:
    return copy.deepcopy(read_config(TPU_STACK)["gpufleet:fleet"])


def test_tpu_stack_plans_a_slice_and_a_fixed_pool() -> None:
    plan = build_plan(parse_fleet(tpu_fleet()), "gcp-tpu")
    train = plan.pool("pretrain-tpu-gcp-use5")
    # ~55 chips needed: the 4x4x4 slice (64 chips, 16 four-chip VMs), in the pinned zone.
    assert (train.accelerator_kind, train.topology, train.slices) == ("tpu", "4x4x4", 1)
    assert (train.gpus, train.nodes, train.gpus_per_node, train.zones) == (64, 16, 4, ("us-east5-a",))
    assert train.fabric == "ici" and train.fabric_enabled
    chat = plan.pool("chat-tpu-gcp-use5")
    assert (chat.accelerator_kind, chat.topology, chat.instance_type) == ("tpu", "2x4", "ct6e-standard-8t")
    assert chat.min_nodes == chat.nodes  # fixed-size TPU VMs: no autoscaler outside GKE
    assert any("no autoscaled form outside GKE" in n for n in chat.notes)
    chat_plan = next(w for w in plan.workloads if w.name == "chat-tpu")
    assert chat_plan.sizing["gpus_per_replica"] == 4  # a 2x2 slice per replica, two per v6e-8 VM


def test_chips_count_against_quota_and_power() -> None:
    fleet = tpu_fleet()
    fleet["sites"][0]["quota_gpus"]["v5p"] = 32  # fewer chips than the 4x4x4 slice
    with pytest.raises(InfeasiblePlanError, match="v5p"):
        build_plan(parse_fleet(fleet), "t")
    plan = build_plan(parse_fleet(tpu_fleet()), "t")
    site = plan.sites[0]
    assert site.gpus_by_model == {"v5p": 64, "v6e": plan.pool("chat-tpu-gcp-use5").gpus}
    train = plan.pool("pretrain-tpu-gcp-use5")
    assert train.power_kw == pytest.approx(16 * 4.08 * 1.1)  # 16 VMs at the estimate, times PUE


def test_a_larger_run_needs_declared_slices() -> None:
    fleet = tpu_fleet()
    fleet["training"][0].update(tokens=1.0e14, deadline_days=30)  # ~7,840 chips: past 16x16x24
    fleet["sites"][0].update(power_mw=200, quota_gpus={"v5p": 20000, "v6e": 64})
    with pytest.raises(SpecError, match=r"fleet\.training\[0\]\.slices.*16x16x24"):
        build_plan(parse_fleet(fleet), "t")
    fleet["training"][0]["slices"] = 2
    train = build_plan(parse_fleet(fleet), "t").pool("pretrain-tpu-gcp-use5")
    assert (train.slices, train.topology) == (2, "16x16x16") and train.gpus == 2 * 4096


def test_tpu_training_runs_on_its_multi_host_vm_type() -> None:
    fleet = tpu_fleet()
    fleet["training"][0]["accelerator"] = "v6e"
    fleet["training"][0]["instance_types"] = ["ct6e-standard-8t"]
    fleet["sites"][0]["quota_gpus"]["v6e"] = 512
    with pytest.raises(SpecError, match=r"v6e training slices run on ct6e-standard-4t VMs"):
        build_plan(parse_fleet(fleet), "t")


def test_accelerator_and_gpu_are_one_field() -> None:
    fleet = tpu_fleet()
    fleet["training"][0]["gpu"] = "v5p"
    with pytest.raises(SpecError, match=r"fleet\.training\[0\]: .*not both"):
        parse_fleet(fleet)
    del fleet["training"][0]["accelerator"]
    assert parse_fleet(fleet).training[0].gpu == "v5p"


def test_trainium_cluster_is_an_efa_cluster() -> None:
    fleet = {
        "sites": [{"name": "aws-use1", "cloud": "aws", "region": "us-east-1", "zones": ["us-east-1a", "us-east-1b"],
                   "power_mw": 5}],
        "training": [{"name": "trn-run", "accelerator": "trainium2", "params": 7e10, "tokens": 1.4e12,
                      "deadline_days": 30, "mfu": 0.4}],
    }
    (pool,) = build_plan(parse_fleet(fleet), "t").pools
    assert (pool.instance_type, pool.accelerator_kind, pool.topology) == ("trn2.48xlarge", "trainium", None)
    assert (pool.fabric, pool.fabric_interfaces, pool.gpus_per_node) == ("efa", 16, 16)
    assert pool.placement_group and pool.gpus == pool.nodes * 16

"""`gpufleet catalog --accelerator` and `gpufleet size ... --accelerator`: TPU and Trainium as a user sees them."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

Run = Callable[..., tuple[int, str, str]]


def test_catalog_filters_by_accelerator_kind(run_cli: Run) -> None:
    code, out, _ = run_cli("catalog", "--accelerator", "tpu", "--json")
    assert code == 0
    assert sorted(r["instance_type"] for r in json.loads(out)) == [
        "ct5lp-hightpu-4t", "ct5lp-hightpu-8t", "ct5p-hightpu-4t", "ct6e-standard-4t", "ct6e-standard-8t"]
    code, out, _ = run_cli("catalog", "--accelerator", "trainium", "--json")
    rows = {r["instance_type"]: r for r in json.loads(out)}
    assert sorted(rows) == ["trn1.32xlarge", "trn2.48xlarge"]
    assert (rows["trn2.48xlarge"]["gpus"], rows["trn2.48xlarge"]["fabric_interfaces"]) == (16, 16)
    _, out, _ = run_cli("catalog", "--accelerator", "gpu", "--cloud", "gcp", "--json")
    assert all(r["gpu"] not in {"v5e", "v5p", "v6e"} for r in json.loads(out)) and json.loads(out)


def test_catalog_refuses_an_unknown_kind(run_cli: Run) -> None:
    code, _, err = run_cli("catalog", "--accelerator", "npu")
    assert code == 2
    assert "gpu" in err and "tpu" in err and "trainium" in err


TRAINING = ["size", "training", "--params", "7e10", "--tokens", "1.4e12", "--days", "30", "--mfu", "0.5", "--json"]


def test_size_training_on_a_tpu_adds_chips_and_topology(run_cli: Run) -> None:
    code, out, _ = run_cli(*TRAINING, "--accelerator", "v5p")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["flops", "gpus", "nodes", "gpu_hours", "days_at_rounded_size", "chips", "topology"]
    # 988.5 chips needed: the smallest v5p shape holding them is 8x8x16 (1,024 chips on 256 VMs),
    # not 248 four-chip hosts (992 chips).
    assert (data["topology"], data["chips"], data["gpus"], data["nodes"]) == ("8x8x16", 1024, 1024, 256)
    assert data["days_at_rounded_size"] <= 30
    _, same, _ = run_cli(*TRAINING, "--gpu", "v5p")
    assert json.loads(same) == data


def test_size_training_on_trainium_counts_chips(run_cli: Run) -> None:
    code, out, _ = run_cli(*TRAINING, "--accelerator", "trainium2")
    data = json.loads(out)
    assert code == 0 and data["chips"] == data["gpus"] == data["nodes"] * 16 and data["topology"] is None


def test_size_training_beyond_one_slice_names_the_flag(run_cli: Run) -> None:
    code, out, err = run_cli(*TRAINING, "--accelerator", "v6e")
    assert code == 2 and out == ""
    assert "--slices" in err and "16x16 (256 chips)" in err and "slices: 2" in err
    code, out, _ = run_cli(*TRAINING, "--accelerator", "v6e", "--slices", "2")
    assert code == 0 and json.loads(out)["topology"] == "16x16" and json.loads(out)["chips"] == 512


@pytest.mark.parametrize("typed", [["--accelerator", "v9x"], ["--accelerator=v9x"], ["--gpu", "H100", "--accelerator", "v9x"]])
def test_an_unknown_accelerator_names_the_flag_as_typed(run_cli: Run, typed: list[str]) -> None:
    code, out, err = run_cli(*TRAINING, *typed)
    assert code == 2 and out == ""
    assert "--accelerator: unknown GPU model 'v9x'" in err and "--gpu" not in err
    assert all(name in err for name in ("H100", "v5p", "v6e", "trainium2"))  # the allowed values


def test_an_unknown_gpu_still_names_gpu(run_cli: Run) -> None:
    code, _, err = run_cli(*TRAINING, "--gpu", "v9x")
    assert code == 2 and "--gpu: unknown GPU model 'v9x'" in err and "--accelerator" not in err


INFERENCE = ["size", "inference", "--params", "8e9", "--layers", "32", "--kv-heads", "8", "--head-dim", "128",
             "--dtype", "bf16", "--context-tokens", "8192", "--json"]


def test_size_inference_on_a_tpu_fits_a_single_host_slice(run_cli: Run) -> None:
    code, out, _ = run_cli(*INFERENCE, "--concurrency", "32", "--accelerator", "v6e")
    assert code == 0
    data = json.loads(out)
    # 16 GB of weights + 34.4 GB of KV cache: more than one chip's 28.8 usable GB, so a 2x2 slice.
    assert list(data) == ["weights_gb", "kv_cache_gb", "gpus_per_replica", "chips", "topology"]
    assert (data["chips"], data["topology"]) == (4, "2x2")
    code, out, err = run_cli(*INFERENCE, "--concurrency", "400", "--accelerator", "v6e")
    assert code == 2 and out == "" and "single-host slice of v6e (4, 8 chips)" in err


def test_size_inference_names_the_accelerator_flag_as_typed(run_cli: Run) -> None:
    code, out, err = run_cli(*INFERENCE, "--concurrency", "32", "--accelerator", "v9x")
    assert code == 2 and out == "" and "--accelerator: unknown GPU model 'v9x'" in err and "v6e" in err

"""`gpufleet size` and `gpufleet catalog`: flags, JSON keys and exit codes as documented."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from gpufleet.catalog import load_catalog
from gpufleet.sizing import SECONDS_PER_DAY

Run = Callable[..., tuple[int, str, str]]


def test_size_training_json_has_exactly_the_contract_keys(run_cli: Run) -> None:
    code, out, _ = run_cli("size", "training", "--params", "7e10", "--tokens", "1.4e12", "--gpu", "H100",
                           "--days", "30", "--mfu", "0.4", "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["flops", "gpus", "nodes", "gpu_hours", "days_at_rounded_size"]
    h100 = load_catalog().gpu("H100")
    assert h100.bf16_dense_flops is not None
    gpu_seconds = 5.88e23 / (h100.bf16_dense_flops * 0.4)
    assert data["flops"] == pytest.approx(5.88e23)
    assert data["gpu_hours"] == pytest.approx(gpu_seconds / 3600)
    assert data["gpus"] == data["nodes"] * 8
    assert data["gpus"] >= gpu_seconds / (30 * SECONDS_PER_DAY) > data["gpus"] - 8
    assert data["days_at_rounded_size"] <= 30


def test_size_training_moe_uses_active_params(run_cli: Run) -> None:
    args = ["size", "training", "--params", "1e12", "--tokens", "1e13", "--gpu", "H100", "--days", "60",
            "--mfu", "0.35", "--json"]
    _, dense, _ = run_cli(*args)
    _, moe, _ = run_cli(*args, "--active-params", "3.2e10")
    assert json.loads(moe)["flops"] == pytest.approx(6 * 3.2e10 * 1e13)
    assert json.loads(moe)["nodes"] < json.loads(dense)["nodes"]


def test_size_inference_json(run_cli: Run) -> None:
    code, out, _ = run_cli("size", "inference", "--params", "7e10", "--layers", "80", "--kv-heads", "8",
                           "--head-dim", "128", "--dtype", "bf16", "--context-tokens", "8192",
                           "--concurrency", "16", "--gpu", "H100", "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["weights_gb", "kv_cache_gb", "gpus_per_replica"]
    assert data["weights_gb"] == pytest.approx(140.0)
    assert data["kv_cache_gb"] == pytest.approx(42.95, abs=0.01)
    assert data["gpus_per_replica"] == 4


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--mfu", "1.5"], "--mfu"),
        (["--mfu", "0"], "--mfu"),
        (["--days", "-3"], "--days"),
        (["--params", "nan"], "finite number"),
        (["--tokens", "inf"], "finite number"),
        (["--gpu", "H1000"], "--gpu: unknown GPU model 'H1000'"),
        (["--active-params", "8e10"], "exceeds --params"),
    ],
)
def test_size_training_bad_input_exits_2(run_cli: Run, args: list[str], fragment: str) -> None:
    base = {"--params": "7e10", "--tokens": "1.4e12", "--gpu": "H100", "--days": "30", "--mfu": "0.4"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    code, out, err = run_cli("size", "training", *[x for kv in base.items() for x in kv], "--json")
    assert code == 2 and out == ""
    assert fragment in err


def test_size_inference_bad_dtype_lists_the_choices(run_cli: Run) -> None:
    code, _, err = run_cli("size", "inference", "--params", "7e10", "--layers", "80", "--kv-heads", "8",
                           "--head-dim", "128", "--dtype", "fp12", "--context-tokens", "8192",
                           "--concurrency", "16", "--gpu", "H100")
    assert code == 2 and "'fp12' is not one of" in err and "bf16" in err


def test_catalog_json_rows_carry_the_contract_fields(run_cli: Run) -> None:
    code, out, _ = run_cli("catalog", "--cloud", "aws", "--json")
    assert code == 0
    rows = json.loads(out)
    assert rows and all(r["cloud"] == "aws" for r in rows)
    for key in ("instance_type", "cloud", "gpu", "gpus", "gpu_memory_gib", "fabric", "fabric_interfaces",
                "fabric_gbps", "node_power_kw", "source"):
        assert all(key in r for r in rows), key
    p5 = next(r for r in rows if r["instance_type"] == "p5.48xlarge")
    assert (p5["gpu"], p5["gpus"], p5["fabric"], p5["fabric_interfaces"]) == ("H100", 8, "efa", 32)
    assert p5["source"].startswith("https://")


def test_catalog_table_and_unknown_cloud(run_cli: Run) -> None:
    code, out, _ = run_cli("catalog", "--cloud", "gcp")
    assert code == 0 and "a3-ultragpu-8g" in out and "p5.48xlarge" not in out
    code, _, err = run_cli("catalog", "--cloud", "oracle")
    assert code == 2 and "'oracle' is not one of 'aws', 'azure', 'gcp'" in err


@pytest.mark.parametrize("command", [[], ["size", "training"], ["size", "inference"], ["catalog"], ["plan"]])
def test_every_command_explains_its_flags(run_cli: Run, command: list[str]) -> None:
    code, out, _ = run_cli(*command, "--help")
    assert code == 0 and "Usage:" in out

"""Shared fixtures: stack files written on the fly, and a runner for the CLI's main()."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufleet.cli import main

REPO = Path(__file__).resolve().parents[1]


def minimal_fleet() -> dict[str, Any]:
    """A small, valid fleet: one AWS site, one training run, one inference service."""
    return {
        "sites": [
            {
                "name": "aws-use1",
                "cloud": "aws",
                "region": "us-east-1",
                "zones": ["us-east-1a", "us-east-1b"],
                "power_mw": 5.0,
                "pue": 1.2,
                "quota_gpus": {"H100": 512},
                "price_per_gpu_hour": {"p5.48xlarge": 3.9},
            }
        ],
        "training": [
            {"name": "pretrain", "params": 7e9, "tokens": 1e11, "gpu": "H100", "deadline_days": 10, "mfu": 0.4}
        ],
        "inference": [
            {
                "name": "chat",
                "model": {"params": 8e9, "layers": 32, "kv_heads": 8, "head_dim": 128, "dtype": "bf16"},
                "context_tokens": 8192,
                "concurrency": 16,
                "tokens_per_s_per_replica": 2000,
                "gpu": "H100",
                "peak_tokens_per_s": 20000,
                "growth_per_month": 0.05,
                "lead_time_days": 30,
                "horizon_days": 90,
            }
        ],
    }


@pytest.fixture
def fleet() -> dict[str, Any]:
    return copy.deepcopy(minimal_fleet())


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[..., Path]:
    """Write a stack file holding ``fleet`` under gpufleet:fleet; returns its path."""

    def _write(fleet: Any, name: str = "test", extra: dict[str, Any] | None = None) -> Path:
        path = tmp_path / f"Pulumi.{name}.yaml"
        config = {"gpufleet:fleet": fleet, **(extra or {})}
        path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        return path

    return _write


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``gpufleet ARGS``; returns (exit code, stdout, stderr)."""

    def _run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out = capsys.readouterr()
        code = exc.value.code
        return (code if isinstance(code, int) else 1), out.out, out.err

    return _run

"""Commands that write files refuse bad output paths before doing any work, and never write over
an input (a PR's stack file must not be replaced by its own report)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _gpufleet(*args: str) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-m", "gpufleet", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    return out.returncode, out.stderr


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    target = tmp_path / "Pulumi.dev.yaml"
    shutil.copy(REPO / "stacks" / "Pulumi.dev.yaml", target)
    return target


def test_diff_json_out_over_the_head_stack_is_refused(stack: Path) -> None:
    before = stack.read_bytes()
    code, err = _gpufleet("diff", "--base", str(stack), "--head", str(stack), "--json-out", str(stack))
    assert code == 2
    assert "--json-out" in err and "is an input of this run" in err
    assert stack.read_bytes() == before


def test_diff_chart_with_a_wrong_suffix_fails_before_the_previews(stack: Path, tmp_path: Path) -> None:
    code, err = _gpufleet("diff", "--base", str(stack), "--head", str(stack), "--chart", str(tmp_path / "out.txt"))
    assert code == 2
    assert "--chart" in err and "has suffix '.txt'" in err and ".svg, .png" in err
    assert not (tmp_path / "out.txt").exists()


def test_preview_output_over_its_own_stack_is_refused(stack: Path) -> None:
    before = stack.read_bytes()
    code, err = _gpufleet("preview", "--stack", str(stack), "--output", str(stack))
    assert code == 2 and "--output" in err and "is an input of this run" in err
    assert stack.read_bytes() == before


@pytest.mark.parametrize("target", ["missing-dir/report.txt", "/dev/full"])
def test_preview_output_to_a_bad_place_fails_before_the_run(stack: Path, tmp_path: Path, target: str) -> None:
    path = target if target.startswith("/") else str(tmp_path / target)
    code, err = _gpufleet("preview", "--stack", str(stack), "--output", path)
    assert code == 2 and "--output" in err
    assert "starting the policy pack" not in err  # refused before any work


def test_duplicate_policy_in_policy_config_is_refused(stack: Path, tmp_path: Path) -> None:
    config = tmp_path / "policy.json"
    config.write_text('{"capacity-covers-demand": {"floors": {"chat-8b": {"peak_tokens_per_s": 1}}},\n'
                      ' "capacity-covers-demand": "advisory"}\n')
    code, err = _gpufleet("preview", "--stack", str(stack), "--policy-config", str(config))
    assert code == 2 and "duplicate key 'capacity-covers-demand' at lines 1 and 2" in err

"""The policy pack boots while the program runs: it is still stopped whatever the program does, and
its own failure is still the one reported. A stack that does not validate fails before any pack starts;
a policy config is reconciled with the pack's schemas once, while the program runs."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

import gpufleet.preview
import gpufleet.engine.client
from gpufleet.engine import PolicyEngine, PolicyEngineError
from gpufleet.errors import SpecError
from gpufleet.preview import run_preview
from tests.preview.conftest import CONFIGS, STACKS

REFUSED_BY_THE_PROGRAM = STACKS.parent / "stacks" / "Pulumi.bad-vnet.yaml"
"""A valid fleet the program refuses (an Azure VNet overlapping the InfiniBand range)."""


class _Recorded(PolicyEngine):
    """A PolicyEngine that keeps every pack process it launched."""

    launched: list[subprocess.Popen[bytes]] = []

    def launch(self) -> None:
        super().launch()
        if self.process is not None and self.process not in _Recorded.launched:
            _Recorded.launched.append(self.process)


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    _Recorded.launched = []
    monkeypatch.setattr(gpufleet.preview, "PolicyEngine", _Recorded)
    return _Recorded.launched


def test_a_stack_that_does_not_validate_fails_before_any_pack_starts(launched: list[subprocess.Popen[bytes]]) -> None:
    with pytest.raises(SpecError, match="growth_per_month"):
        run_preview(STACKS / "Pulumi.malformed.yaml")
    assert launched == []


def test_the_pack_is_stopped_when_the_program_refuses_the_stack(launched: list[subprocess.Popen[bytes]]) -> None:
    with pytest.raises(SpecError, match="172.16.0.0/16"):
        run_preview(REFUSED_BY_THE_PROGRAM)
    [pack] = launched
    assert pack.poll() is not None, "the policy pack outlived the failed preview"


def test_the_pack_is_stopped_after_a_passing_preview(launched: list[subprocess.Popen[bytes]]) -> None:
    assert run_preview(STACKS / "Pulumi.good.yaml").verdict == "pass"
    [pack] = launched
    assert pack.poll() is not None


def test_a_pack_that_does_not_start_is_reported_before_the_program_s_errors(
        launched: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("import sys\nsys.exit('the pack is broken')\n")
    with pytest.raises(PolicyEngineError, match="the pack is broken"):
        run_preview(REFUSED_BY_THE_PROGRAM, pack_dir=tmp_path)
    [pack] = launched
    assert pack.poll() is not None


def test_a_bad_policy_config_wins_over_the_program_s_errors(launched: list[subprocess.Popen[bytes]]) -> None:
    with pytest.raises(SpecError, match="no policy of that name in the pack"):
        run_preview(REFUSED_BY_THE_PROGRAM, CONFIGS / "unknown-policy.json")
    [pack] = launched
    assert pack.poll() is not None


def test_a_policy_config_is_reconciled_once_while_the_program_runs(launched: list[subprocess.Popen[bytes]],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = gpufleet.preview.reconcile_policy_config

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gpufleet.preview, "reconcile_policy_config", counted)
    monkeypatch.setattr(gpufleet.engine.client, "reconcile_policy_config", counted)
    result = run_preview(STACKS / "Pulumi.good.yaml", CONFIGS / "floors-met.json")
    assert result.verdict == "pass"
    assert calls == ["gpufleet-pack-start"]  # not in the main thread, which runs the program meanwhile
    assert result.policy_config["capacity-covers-demand"].properties["floors"]

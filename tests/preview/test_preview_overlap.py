"""The policy pack boots while the program runs: it is still stopped whatever the program does, and
its own failure is still the one reported."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import gpufleet.preview
from gpufleet.engine import PolicyEngine, PolicyEngineError
from gpufleet.errors import SpecError
from gpufleet.preview import run_preview
from tests.preview.conftest import STACKS


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


def test_the_pack_is_stopped_when_the_program_refuses_the_stack(launched: list[subprocess.Popen[bytes]]) -> None:
    with pytest.raises(SpecError, match="growth_per_month"):
        run_preview(STACKS / "Pulumi.malformed.yaml")
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
        run_preview(STACKS / "Pulumi.malformed.yaml", pack_dir=tmp_path)
    [pack] = launched
    assert pack.poll() is not None

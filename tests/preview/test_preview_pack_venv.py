"""The pack runs the way the engine runs it: from its own virtualenv (``policies/venv``, built from
``policies/requirements.txt`` as ``pulumi install`` builds it; CI builds it in scripts/test.sh), with
the pack directory as working directory."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from gpufleet.engine import PolicyEngine
from gpufleet.engine.process import pack_python
from gpufleet.preview import run_preview
from tests.preview.conftest import REPO

VENV_PYTHON = REPO / "policies" / "venv" / "bin" / "python"


def test_the_pack_runs_from_the_virtualenv_its_pulumipolicy_yaml_names(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "PulumiPolicy.yaml").write_text("runtime:\n  name: python\n  options:\n    virtualenv: env\n")
    python, note = pack_python(pack)
    assert python == sys.executable and note is not None and "env is not built" in note
    (pack / "env" / "bin").mkdir(parents=True)
    (pack / "env" / "bin" / "python").write_text("")
    assert pack_python(pack) == (str(pack / "env" / "bin" / "python"), None)


def test_without_its_virtualenv_a_preview_says_which_interpreter_ran_the_pack(tmp_path: Path) -> None:
    pack = tmp_path / "policies"
    shutil.copytree(REPO / "policies", pack, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    result = run_preview(REPO / "stacks" / "Pulumi.dev.yaml", pack_dir=pack)
    assert result.verdict == "pass"
    assert any("its virtualenv" in n and "is not built" in n for n in result.notes)


@pytest.mark.skipif(not VENV_PYTHON.is_file(), reason="policies/venv is not built (scripts/test.sh builds it)")
def test_a_preview_runs_the_pack_in_policies_venv() -> None:
    engine = PolicyEngine(REPO / "policies", stack="dev")
    assert engine.python == str(VENV_PYTHON) and engine.note is None
    try:
        result = run_preview(REPO / "stacks" / "Pulumi.prod.yaml", engine=engine)
        assert engine.process is not None and engine.process.args[0] == str(VENV_PYTHON)
        assert engine.pack_dir == REPO / "policies"
    finally:
        engine.close()
    assert result.verdict == "pass" and result.pack.name == "gpufleet"
    assert not any("virtualenv" in n for n in result.notes)

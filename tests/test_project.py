"""Finding a stack's Pulumi project: its program and its policy pack come from Pulumi.yaml, never from
where the gpufleet package is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gpufleet.errors import EXIT_BAD_INPUT, SpecError
from gpufleet.project import default_pack_dir, find_project

REPO = Path(__file__).resolve().parents[1]


def _project(root: Path, pulumi_yaml: str = "name: fleet\nruntime: python\n") -> Path:
    """A project directory with a stacks/ folder; returns the stack file path (not written)."""
    (root / "stacks").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text(pulumi_yaml)
    return root / "stacks" / "Pulumi.dev.yaml"


def test_the_repository_stacks_belong_to_the_repository_project() -> None:
    project = find_project(REPO / "stacks" / "Pulumi.dev.yaml")
    assert project.file == REPO / "Pulumi.yaml" and project.name == "gpufleet"
    assert project.program == REPO / "__main__.py"
    assert project.policy_pack == REPO / "policies"
    assert project.stack_config_dir == REPO / "stacks"  # stackConfigDir: where the program reads histories


def test_the_nearest_pulumi_yaml_above_the_stack_wins(tmp_path: Path) -> None:
    stack = _project(tmp_path / "outer" / "inner", "name: inner\n")
    (tmp_path / "outer" / "Pulumi.yaml").write_text("name: outer\n")
    project = find_project(stack)
    assert project.name == "inner"
    assert project.program == tmp_path / "outer" / "inner" / "__main__.py"
    assert project.policy_pack == tmp_path / "outer" / "inner" / "policies"


@pytest.mark.parametrize(("main", "program"), [
    ("app", "app/__main__.py"),       # a directory: its __main__.py
    ("app/", "app/__main__.py"),
    ("src/fleet.py", "src/fleet.py"),  # a file: itself
])
def test_main_names_the_program(tmp_path: Path, main: str, program: str) -> None:
    stack = _project(tmp_path, f"name: fleet\nmain: {main}\n")
    assert find_project(stack).program == tmp_path / program


def test_a_stack_outside_any_project_runs_in_the_working_directorys_project(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stack read from a git ref or copied to a temporary directory, as `pulumi --config-file` runs it.
    loose = tmp_path / "loose"
    loose.mkdir()
    monkeypatch.chdir(REPO / "stacks")
    assert find_project(loose / "Pulumi.x.yaml").file == REPO / "Pulumi.yaml"


def test_no_project_anywhere_is_bad_input_saying_where_it_looked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stack = tmp_path / "stacks" / "Pulumi.dev.yaml"
    with pytest.raises(SpecError) as exc:
        find_project(stack)
    text = str(exc.value)
    assert exc.value.exit_code == EXIT_BAD_INPUT
    assert f"no Pulumi.yaml in {tmp_path / 'stacks'} or any directory above it" in text
    assert "run gpufleet from the project's directory" in text


def test_a_pulumi_yaml_without_a_name_is_bad_input(tmp_path: Path) -> None:
    stack = _project(tmp_path, "runtime: python\n")
    with pytest.raises(SpecError, match="needs a top-level 'name:'"):
        find_project(stack)


def test_the_pack_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = _project(tmp_path / "project")
    monkeypatch.delenv("GPUFLEET_POLICY_PACK", raising=False)
    assert default_pack_dir(stack) == tmp_path / "project" / "policies"
    monkeypatch.setenv("GPUFLEET_POLICY_PACK", str(tmp_path / "elsewhere"))
    assert default_pack_dir(stack) == tmp_path / "elsewhere"


def test_preview_outside_any_project_exits_2(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text((REPO / "stacks" / "Pulumi.dev.yaml").read_text())
    out = subprocess.run([sys.executable, "-m", "gpufleet", "preview", "--stack", str(stack)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "no Pulumi.yaml in" in out.stderr and "Traceback" not in out.stderr


def test_the_core_never_locates_files_from_its_own_installation() -> None:
    # A wheel lives in site-packages: paths derived from the package's location would point there.
    users = [p.relative_to(REPO).as_posix() for p in (REPO / "gpufleet").rglob("*.py") if "__file__" in p.read_text()]
    assert users == []

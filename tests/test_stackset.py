"""Which stacks a multi-stack command runs, and the one exit code it ends with."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufleet.errors import SpecError
from gpufleet.stackset import (
    StackRef,
    check_policy_config_flags,
    expand_stacks,
    is_many,
    policy_config_for,
    result_word,
    worst_exit,
)


def _stacks(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    return tmp_path


def test_a_directory_stands_for_its_stack_files_by_name(tmp_path: Path) -> None:
    d = _stacks(tmp_path, "prod", "dev", "aws-training")
    (d / "README.md").write_text("not a stack")
    assert [s.name for s in expand_stacks([d])] == ["aws-training", "dev", "prod"]


def test_files_keep_the_order_given_and_a_repeated_file_counts_once(tmp_path: Path) -> None:
    d = _stacks(tmp_path, "b", "a")
    refs = expand_stacks([d / "Pulumi.b.yaml", d / "Pulumi.a.yaml", d, d / "Pulumi.b.yaml"])
    assert [s.name for s in refs] == ["b", "a"]


def test_two_stacks_with_one_name_and_missing_paths_are_bad_input(tmp_path: Path) -> None:
    for sub in ("x", "y", "empty"):
        (tmp_path / sub).mkdir()
    _stacks(tmp_path / "x", "fleet")
    _stacks(tmp_path / "y", "fleet")
    with pytest.raises(SpecError) as err:
        expand_stacks([tmp_path / "x", tmp_path / "y", tmp_path / "empty", tmp_path / "nope.yaml"])
    text = str(err.value)
    assert "two stacks are named 'fleet'" in text
    assert "holds no Pulumi.*.yaml file" in text
    assert "no such stack file or directory" in text and err.value.exit_code == 2


def test_a_missing_stack_may_be_kept_for_diff(tmp_path: Path) -> None:
    assert expand_stacks([tmp_path / "Pulumi.gone.yaml"], missing_ok=True) == [
        StackRef("gone", tmp_path / "Pulumi.gone.yaml")]


def test_many_means_more_than_one_or_a_directory(tmp_path: Path) -> None:
    assert not is_many(["stacks/Pulumi.dev.yaml"])
    assert is_many(["a", "b"]) and is_many([tmp_path])


@pytest.mark.parametrize(("codes", "worst"), [
    ([], 0), ([0, 0], 0), ([0, 4], 4), ([4, 3, 0], 3), ([3, 1], 1), ([1, 2, 3], 2), ([0, 143], 1), ([-9], 1),
])
def test_the_combined_exit_code_is_the_worst(codes: list[int], worst: int) -> None:
    assert worst_exit(codes) == worst


def test_result_words() -> None:
    assert [result_word(c) for c in (0, 1, 2, 3, 4, None, 7)] == [
        "pass", "internal fault", "bad input", "blocked", "could not run", "not run", "internal fault (exit 7)"]


def test_per_stack_policy_configs(tmp_path: Path) -> None:
    (tmp_path / "prod.json").write_text("{}")
    prod, dev = StackRef("prod", Path("p")), StackRef("dev", Path("d"))
    assert policy_config_for(prod, every=None, per_stack_dir=tmp_path) == tmp_path / "prod.json"
    assert policy_config_for(dev, every=None, per_stack_dir=tmp_path) is None
    assert policy_config_for(dev, every=Path("all.json"), per_stack_dir=None) == Path("all.json")
    with pytest.raises(SpecError, match="cannot be used with --policy-config"):
        check_policy_config_flags(Path("all.json"), tmp_path)
    with pytest.raises(SpecError, match="is not a directory"):
        check_policy_config_flags(None, tmp_path / "nope")

"""Reading stacks whose fleet lives in files (``gpufleet:fleetFiles``), and the config-size limit."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufleet.errors import SpecError
from gpufleet.offline import run_program
from gpufleet.stackfile import (
    MAX_ARG_STRLEN,
    check_config_size,
    config_env_bytes,
    fleet_from_config,
    load_stack,
    read_stack,
)
from tests.conftest import REPO, minimal_fleet

Run = Callable[..., tuple[int, str, str]]


def make_project(root: Path, files: dict[str, Any], config: dict[str, Any], *, stack: str = "t") -> Path:
    """A Pulumi project at ``root`` (the repository's program and pack), fleet files and one stack."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Pulumi.yaml").write_text(f"name: gpufleet\nmain: {REPO / '__main__.py'}\n")
    if not (root / "policies").exists():
        (root / "policies").symlink_to(REPO / "policies")
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def split_fleet() -> dict[str, Any]:
    fleet = minimal_fleet()
    return {"fleet/t/sites.yaml": {"sites": fleet["sites"]},
            "fleet/t/work.yaml": {"training": fleet["training"], "inference": fleet["inference"]}}


def test_fleet_in_files_validates_as_the_inline_fleet(tmp_path: Path) -> None:
    stack = make_project(tmp_path, split_fleet(), {"gpufleet:fleetFiles": ["fleet/t/*.yaml"]})
    _, from_files = load_stack(stack)
    _, inline = load_stack(make_project(tmp_path / "inline", {}, {"gpufleet:fleet": minimal_fleet()}))
    assert from_files == inline
    assert [f.name for f in read_stack(stack).fleet_files] == ["sites.yaml", "work.yaml"]


def test_inline_and_files_merge_lists_in_order(tmp_path: Path) -> None:
    fleet = minimal_fleet()
    second = copy.deepcopy(fleet["inference"][0]) | {"name": "chat-b"}
    files = {"fleet/more.yaml": {"inference": [second]}}
    stack = make_project(tmp_path, files, {"gpufleet:fleet": fleet, "gpufleet:fleetFiles": ["fleet/more.yaml"]})
    _, spec = load_stack(stack)
    assert [w.name for w in spec.inference] == ["chat", "chat-b"]


def test_an_error_in_a_file_names_the_file_the_line_and_the_field(tmp_path: Path) -> None:
    files = split_fleet()
    files["fleet/t/work.yaml"]["inference"][0]["growth_per_month"] = -1
    stack = make_project(tmp_path, files, {"gpufleet:fleetFiles": ["fleet/t/*.yaml"]})
    with pytest.raises(SpecError) as err:
        load_stack(stack)
    [issue] = err.value.issues
    text = (tmp_path / "fleet/t/work.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text, start=1) if "growth_per_month" in t)
    assert issue.loc == f"fleet/t/work.yaml:{line}: inference[0].growth_per_month"
    assert "-1" in issue.message


def test_a_missing_field_points_at_its_entry(tmp_path: Path) -> None:
    files = split_fleet()
    del files["fleet/t/work.yaml"]["inference"][0]["gpu"]
    stack = make_project(tmp_path, files, {"gpufleet:fleetFiles": ["fleet/t/*.yaml"]})
    with pytest.raises(SpecError) as err:
        load_stack(stack)
    text = (tmp_path / "fleet/t/work.yaml").read_text().splitlines()
    entry = next(i for i, t in enumerate(text, start=1) if t.lstrip().startswith("- name: chat"))
    assert [i.loc for i in err.value.issues] == [f"fleet/t/work.yaml:{entry}: inference[0].gpu"]


def test_a_service_declared_in_two_files_is_refused_naming_both(tmp_path: Path, run_cli: Run) -> None:
    files = split_fleet()
    files["fleet/t/again.yaml"] = {"inference": files["fleet/t/work.yaml"]["inference"]}
    stack = make_project(tmp_path, files, {"gpufleet:fleetFiles": ["fleet/t/*.yaml"]})
    code, out, err = run_cli("plan", "--stack", str(stack))
    assert (code, out) == (2, "")
    assert "fleet/t/work.yaml:" in err and "duplicate workload name 'chat' (also fleet/t/again.yaml:" in err


def test_a_setting_given_twice_is_refused(tmp_path: Path) -> None:
    files = split_fleet() | {"fleet/t/price.yaml": {"carbon_price_per_tonne": 50}}
    stack = make_project(tmp_path, files, {"gpufleet:fleet": {"carbon_price_per_tonne": 40},
                                           "gpufleet:fleetFiles": ["fleet/t/*.yaml"]})
    with pytest.raises(SpecError, match=r"fleet/t/price.yaml:1: carbon_price_per_tonne: carbon_price_per_tonne "
                                        r"is set again \(also in fleet\)"):
        load_stack(stack)


@pytest.mark.parametrize("patterns, message", [
    (["fleet/none/*.yaml"], "'fleet/none/*.yaml' matches no file under"),
    (["fleet/t/missing.yaml"], "no such file 'fleet/t/missing.yaml' under"),
    (["../outside.yaml"], "'../outside.yaml' is outside the project directory"),
    (["/etc/passwd"], "'/etc/passwd' is outside the project directory"),
    ("fleet/t/*.yaml", "must be a list of paths or globs"),
    (["fleet/t"], "is a directory, not a regular file"),
])
def test_bad_fleet_files_are_bad_input(tmp_path: Path, run_cli: Run, patterns: Any, message: str) -> None:
    stack = make_project(tmp_path / "p", split_fleet(), {"gpufleet:fleetFiles": patterns})
    (tmp_path / "outside.yaml").write_text("sites: []\n")
    code, out, err = run_cli("plan", "--stack", str(stack))
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err


def test_a_symlink_out_of_the_project_is_refused(tmp_path: Path) -> None:
    stack = make_project(tmp_path / "p", split_fleet(), {"gpufleet:fleetFiles": ["fleet/t/*.yaml"]})
    (tmp_path / "secret.yaml").write_text("inference: []\n")
    (tmp_path / "p/fleet/t/link.yaml").symlink_to(tmp_path / "secret.yaml")
    with pytest.raises(SpecError, match="leads outside the project directory"):
        load_stack(stack)


def test_the_program_reads_the_files_itself(tmp_path: Path) -> None:
    stack = make_project(tmp_path, split_fleet(), {"gpufleet:fleetFiles": ["fleet/t/*.yaml"]})
    run = run_program(stack)
    pools = {r.name for r in run.resources if r.type.startswith("gpufleet:index:")}
    assert {"pretrain-aws-use1", "chat-aws-use1", "aws-use1"} <= pools
    # The same checks in the program: a duplicate refuses the run with the same message.
    (tmp_path / "fleet/t/again.yaml").write_text((tmp_path / "fleet/t/work.yaml").read_text())
    with pytest.raises(SpecError, match="duplicate workload name 'chat'"):
        run_program(stack)


def test_fleet_from_config_needs_a_fleet() -> None:
    with pytest.raises(SpecError, match="gpufleet:fleet: is required"):
        fleet_from_config(None, None, source="stack t")


def test_config_size_warns_then_refuses_pointing_to_fleet_files() -> None:
    assert check_config_size({"gpufleet:fleet": "x" * 1000}, source="s") is None
    near = {"gpufleet:fleet": "x" * int(0.8 * MAX_ARG_STRLEN)}
    warning = check_config_size(near, source="s")
    assert warning is not None and "80%" in warning and "gpufleet:fleetFiles" in warning
    over = {"gpufleet:fleet": "x" * MAX_ARG_STRLEN, "gpufleet:images": "{}"}
    with pytest.raises(SpecError) as err:
        check_config_size(over, source="s")
    assert err.value.issues[0].loc == "config.gpufleet:fleet"
    assert "MAX_ARG_STRLEN" in str(err.value) and "gpufleet:fleetFiles" in str(err.value)
    assert config_env_bytes({"a": "b"}) == len('PULUMI_CONFIG={"a": "b"}') + 1


def _grown(services: int) -> dict[str, Any]:
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from fleets import big_fleet

    fleet = big_fleet(services)
    for site in fleet["sites"]:
        site["power_mw"], site["quota_gpus"] = 100.0, {"H100": 60_000}
    return fleet


def test_400_services_inline_are_refused_clearly_and_as_files_are_small(tmp_path: Path, run_cli: Run) -> None:
    fleet = _grown(400)
    inline = make_project(tmp_path, {}, {"gpufleet:fleet": fleet}, stack="inline")
    code, out, err = run_cli("preview", "--stack", str(inline))
    assert (code, out) == (2, "")
    assert "over Linux's 131,072-byte limit" in err and "gpufleet:fleetFiles" in err
    assert "Argument list too long" in err and "Errno" not in err
    files = {"fleet/big/sites.yaml": {"sites": fleet["sites"], "training": fleet["training"]}}
    files |= {f"fleet/big/svc-{i // 100}.yaml": {"inference": fleet["inference"][i:i + 100]} for i in range(0, 400, 100)}
    stack = make_project(tmp_path, files, {"gpufleet:fleetFiles": ["fleet/big/*.yaml"]}, stack="big")
    assert len(read_stack(stack).spec.inference) == 400
    code, out, err = run_cli("plan", "--stack", str(stack), "--json")
    assert code == 0 and "warning" not in err
    assert len({p["workload"] for p in json.loads(out)["pools"]}) == 404
    code, _, err = run_cli("plan", "--stack", str(inline), "--json")
    assert code == 0 and err.startswith("warning: the stack's config is 189,")


def test_preview_of_a_fleet_in_files(tmp_path: Path, run_cli: Run) -> None:
    stack = make_project(tmp_path, split_fleet(), {"gpufleet:fleetFiles": ["fleet/t/*.yaml"]})
    code, out, err = run_cli("preview", "--stack", str(stack), "--format", "json")
    report = json.loads(out)
    assert (code, report["verdict"]) == (0, "pass"), err
    assert {w["name"] for w in report["workloads"]} == {"chat", "pretrain"}


def test_a_fleet_file_is_parsed_once_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the preview validates the stack, then its program reads the same files: one parse serves both,
    # and an edited file is read afresh
    import gpufleet.stackfile as stackfile

    fleet = minimal_fleet()
    stack = make_project(tmp_path, {"fleet/all.yaml": fleet}, {"gpufleet:fleetFiles": ["fleet/*.yaml"]})
    parses: list[str] = []
    real = stackfile.parse_yaml_lines
    monkeypatch.setattr(stackfile, "parse_yaml_lines", lambda text, **kw: parses.append(kw["source"]) or real(text, **kw))
    first = read_stack(stack).spec
    again = fleet_from_config(None, ["fleet/*.yaml"], source="program", root=tmp_path, base_dir=stack.parent)
    assert again == first and parses == ["fleet/all.yaml"]
    fleet["inference"][0]["peak_tokens_per_s"] *= 2
    (tmp_path / "fleet" / "all.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False))
    edited = read_stack(stack).spec
    assert parses == ["fleet/all.yaml", "fleet/all.yaml"]
    assert edited.inference[0].peak_tokens_per_s == 2 * first.inference[0].peak_tokens_per_s

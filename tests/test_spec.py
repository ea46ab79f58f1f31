"""The fleet spec: strict validation with field paths, collected errors, and the CLI's exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpufleet.errors import SpecError
from gpufleet.spec import parse_fleet
from gpufleet.stackfile import load_stack

REPO = Path(__file__).resolve().parents[1]


def _errors(fleet: Any) -> list[str]:
    with pytest.raises(SpecError) as exc:
        parse_fleet(fleet)
    return [str(issue) for issue in exc.value.issues]


def test_minimal_fleet_validates(fleet: dict[str, Any]) -> None:
    spec = parse_fleet(fleet)
    assert spec.sites[0].envelope_kw == 5000
    assert spec.training[0].flops == pytest.approx(6 * 7e9 * 1e11)
    assert spec.inference[0].headroom == 0.2  # documented default
    assert spec.inference[0].survive_zone_losses == 1  # a zone loss is survived unless said otherwise


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        # an unknown key, with the fields that are allowed
        (lambda f: f["inference"][0].update(growth=0.1), "fleet.inference[0].growth", "unknown field"),
        # a wrong type
        (lambda f: f["sites"][0].update(power_mw="lots"), "fleet.sites[0].power_mw", "valid number"),
        # a negative number
        (lambda f: f["inference"][0].update(growth_per_month=-0.1), "fleet.inference[0].growth_per_month",
         "greater than or equal to 0"),
        # NaN and infinity
        (lambda f: f["inference"][0].update(peak_tokens_per_s=float("nan")), "fleet.inference[0].peak_tokens_per_s",
         "finite number"),
        (lambda f: f["sites"][0].update(power_mw=float("inf")), "fleet.sites[0].power_mw", "finite number"),
        # an unknown GPU model, with a suggestion
        (lambda f: f["training"][0].update(gpu="H1000"), "fleet.training[0].gpu", "unknown GPU model 'H1000'"),
        # an unknown instance type
        (lambda f: f["inference"][0].update(instance_types=["p9.huge"]), "fleet.inference[0].instance_types",
         "unknown instance type 'p9.huge'"),
        # MFU outside (0, 1]
        (lambda f: f["training"][0].update(mfu=1.5), "fleet.training[0].mfu", "less than or equal to 1"),
        (lambda f: f["training"][0].update(mfu=0), "fleet.training[0].mfu", "greater than 0"),
        # a site on an unknown cloud, with the allowed clouds
        (lambda f: f["sites"][0].update(cloud="oracle"), "fleet.sites[0].cloud", "'aws', 'azure' or 'gcp'"),
        # a missing required field
        (lambda f: f["training"][0].pop("tokens"), "fleet.training[0].tokens", "is required"),
        # an instance type that does not carry the declared GPU
        (lambda f: f["training"][0].update(instance_types=["g6e.xlarge"]), "fleet.training[0]",
         "does not carry H100"),
        # a reference to a site that does not exist
        (lambda f: f["inference"][0].update(sites=["nowhere"]), "fleet.inference[0].sites[0]", "unknown site"),
        # a reservation with a placement group the reservation cannot serve
        (lambda f: f["training"][0].update(capacity={"type": "capacity_block", "reservation_id": "cr-1"}),
         "fleet.training[0].capacity", "Capacity Block cannot be combined with a placement group"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(fleet: dict[str, Any], mutate: Callable[[Any], Any],
                                                       path: str, fragment: str) -> None:
    mutate(fleet)
    errors = _errors(fleet)
    assert any(e.startswith(path) and fragment in e for e in errors), errors


def test_unknown_field_lists_the_allowed_fields(fleet: dict[str, Any]) -> None:
    fleet["sites"][0]["powr_mw"] = 3
    (error,) = _errors(fleet)
    assert "unknown field 'powr_mw'" in error and "power_mw" in error.split("allowed:")[1]


def test_all_errors_of_a_file_are_reported_at_once(fleet: dict[str, Any]) -> None:
    fleet["sites"][0]["pue"] = 0.5
    fleet["training"][0]["mfu"] = 2
    fleet["inference"][0]["growth_per_month"] = float("nan")
    errors = _errors(fleet)
    assert len(errors) == 3
    assert {e.split(":")[0] for e in errors} == {
        "fleet.sites[0].pue", "fleet.training[0].mfu", "fleet.inference[0].growth_per_month"}


def test_duplicate_names_and_impossible_survival_are_caught(fleet: dict[str, Any]) -> None:
    fleet["inference"][0]["name"] = "pretrain"
    fleet["inference"][0]["survive_zone_losses"] = 2
    errors = _errors(fleet)
    assert any("duplicate workload name 'pretrain'" in e for e in errors)
    assert any(e.startswith("fleet.inference[0].survive_zone_losses") for e in errors)


def test_stack_file_errors(tmp_path: Path, write_stack: Callable[..., Path], fleet: dict[str, Any]) -> None:
    bad_yaml = tmp_path / "Pulumi.bad.yaml"
    bad_yaml.write_text("config:\n  gpufleet:fleet: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML at line"):
        load_stack(bad_yaml)
    with pytest.raises(SpecError, match=r"config\.gpufleet:fleet: is required"):
        load_stack(_without_fleet(tmp_path))
    with pytest.raises(SpecError, match="unknown gpufleet setting"):
        load_stack(write_stack(fleet, extra={"gpufleet:flet": {}}))
    stack, spec = load_stack(write_stack(fleet, name="staging"))
    assert stack == "staging" and spec.training[0].name == "pretrain"


def _without_fleet(tmp_path: Path) -> Path:
    path = tmp_path / "Pulumi.nofleet.yaml"
    path.write_text("config:\n  aws:region: us-east-1\n")
    return path


@pytest.mark.parametrize("stack", sorted(p.name for p in (REPO / "stacks").glob("Pulumi.*.yaml")))
def test_shipped_stacks_validate(stack: str) -> None:
    name, spec = load_stack(REPO / "stacks" / stack)
    assert name == stack.removeprefix("Pulumi.").removesuffix(".yaml")
    assert spec.sites


def test_cli_exit_code_2_and_every_message(run_cli: Callable[..., tuple[int, str, str]],
                                           write_stack: Callable[..., Path], fleet: dict[str, Any]) -> None:
    fleet["sites"][0]["cloud"] = "oracle"
    fleet["inference"][0]["growth_per_month"] = -1
    code, out, err = run_cli("plan", "--stack", str(write_stack(fleet)))
    assert code == 2
    assert out == ""
    assert "2 errors" in err
    assert "fleet.sites[0].cloud" in err and "fleet.inference[0].growth_per_month" in err and "-1" in err


def test_cli_missing_stack_file_is_bad_input(run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    code, _, err = run_cli("plan", "--stack", str(tmp_path / "Pulumi.nope.yaml"))
    assert code == 2 and "cannot read" in err


def test_program_settings_are_accepted_beside_the_fleet(write_stack: Callable[..., Path],
                                                        fleet: dict[str, Any]) -> None:
    extra = {"gpufleet:sshPublicKey": "ssh-ed25519 AAAAC3Nza you@host", "gpufleet:images": {"chat": "ami-123"}}
    stack, spec = load_stack(write_stack(fleet, extra=extra))
    assert spec.inference[0].name == "chat"


def test_exponent_numbers_in_yaml_are_numbers_and_text_is_not(tmp_path: Path, write_stack: Callable[..., Path],
                                                             fleet: dict[str, Any]) -> None:
    # YAML 1.1 reads 7.0e9 as text; Pulumi (YAML 1.2) reads it as a number, and so does gpufleet.
    text = write_stack(fleet).read_text().replace("7000000000.0", "7.0e9").replace("100000000000.0", "1e11")
    assert "7.0e9" in text and "1e11" in text
    path = tmp_path / "Pulumi.exp.yaml"
    path.write_text(text)
    _, spec = load_stack(path)
    assert spec.training[0].params == 7e9 and spec.training[0].tokens == 1e11
    # Validation is strict: a number written as a string is refused, with its field path.
    fleet["training"][0]["params"] = "7e9"
    assert any(e.startswith("fleet.training[0].params") and "valid number" in e for e in _errors(fleet))


def test_a_site_error_reads_the_same_in_the_spec_and_in_place(fleet: dict[str, Any]) -> None:
    from gpufleet.placement import parse_problem

    fleet["sites"][0]["power_mw"] = -1.0
    [spec_issue] = [i for i in _issue_list(fleet) if i.loc.endswith("power_mw")]
    with pytest.raises(SpecError) as err:
        parse_problem({"sites": [fleet["sites"][0]], "pools": []})
    [place_issue] = err.value.issues
    assert spec_issue.loc == "fleet.sites[0].power_mw" and place_issue.loc == "sites[0].power_mw"
    assert (spec_issue.message, spec_issue.hint) == (place_issue.message, place_issue.hint) == (
        "Input should be greater than or equal to 0, got -1.0", "a number >= 0")


def _issue_list(fleet: Any) -> list[Any]:
    with pytest.raises(SpecError) as exc:
        parse_fleet(fleet)
    return list(exc.value.issues)

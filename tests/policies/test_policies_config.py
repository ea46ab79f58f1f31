"""The pack's config schemas, the JSON-schema checker, the example config and the pack's files."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import yaml

from gpufleet.engine import parse_policy_config, validate_json_schema
from gpufleet.policy.config import BY_NAME, FLOOR_SCHEMA, FLOORS_SCHEMA, POLICIES
from tests.policies.conftest import PACK_DIR, REPO

FLOORS = [
    # (floor, valid?) -- one comment-worthy case per line
    ({"peak_tokens_per_s": 1000}, True),
    ({"peak_tokens_per_s": 0}, False),  # exclusiveMinimum 0
    ({"growth_per_month": 0}, True),  # minimum 0 is allowed
    ({"growth_per_month": -0.1}, False),
    ({"survive_zone_losses": 1.5}, False),  # integer
    ({"survive_zone_losses": 2.0}, True),  # 2.0 is a whole number (protobuf sends floats)
    ({"model": {"params": 7e10, "dtype": "bf16"}}, True),
    ({"model": {"dtype": "bf15"}}, False),  # enum
    ({"model": {"paramz": 1}}, False),  # unknown nested field
    ({"demand_ramp_per_minute": 1.2}, False),  # maximum 1
    ({"memory_reserved_fraction": 1}, False),  # exclusiveMaximum 1
    ({"mfu": 1}, True),
    ({"flops": 7.2e21, "deadline_days": 14}, True),
    ({}, False),  # minProperties 1
    ({"peak": 5}, False),  # unknown field
    ({"headroom": "lots"}, False),  # type
    ({"headroom": True}, False),  # booleans are not numbers
    ({"forecast": {"p50": 0.05, "p90": 0.2}, "scenarios": [{"name": "viral", "growth_per_month": 0.3}]}, True),
    ({"forecast": {"q50": 0.05}}, False),  # quantile keys are pNN
    ({"forecast": {"p100": 0.05}}, False),
    ({"scenarios": [{"name": "viral", "growth_per_month": -1}]}, False),  # items checked too
]


@pytest.mark.parametrize(("floor", "valid"), FLOORS)
def test_floor_schema(floor: dict[str, Any], valid: bool) -> None:
    assert (validate_json_schema(floor, FLOOR_SCHEMA) == []) is valid


@pytest.mark.parametrize(("floor", "valid"), FLOORS)
def test_checker_agrees_with_the_reference_implementation(floor: dict[str, Any], valid: bool) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    reference = jsonschema.Draft7Validator(FLOORS_SCHEMA).is_valid({"svc": floor})
    assert reference is valid
    assert (validate_json_schema({"svc": floor}, FLOORS_SCHEMA) == []) is reference


def test_floors_keys_are_workload_names() -> None:
    assert validate_json_schema({"chat-70b": {"headroom": 0.1}}, FLOORS_SCHEMA) == []
    [error] = validate_json_schema({"Chat_70B": {"headroom": 0.1}}, FLOORS_SCHEMA)
    assert error.startswith("Chat_70B (name): 'Chat_70B' does not match")


def test_checker_refuses_keywords_it_does_not_implement() -> None:
    with pytest.raises(ValueError, match="unsupported keyword"):
        validate_json_schema(1, {"oneOf": [{"type": "number"}]})
    with pytest.raises(ValueError, match="draft 6"):
        validate_json_schema(1, {"type": "number", "exclusiveMinimum": True})


@pytest.mark.parametrize("spec", POLICIES, ids=lambda s: s.name)
def test_every_schema_is_checkable_and_its_defaults_valid(spec: Any) -> None:
    assert spec.validate(spec.with_defaults({})) == []
    for name, prop in spec.properties.items():
        assert "description" in prop, f"{spec.name}.{name} has no description"
        assert "default" in prop, f"{spec.name}.{name} has no default"


def test_policy_metadata() -> None:
    assert [p.name for p in POLICIES][-1] == "policies-ran-cleanly"
    for p in POLICIES:
        assert p.enforcement in ("mandatory", "advisory")
        assert p.description.endswith(".") and p.remediation


def test_example_config_validates() -> None:
    path = PACK_DIR / "examples" / "policy-config.json"
    config = parse_policy_config(json.loads(path.read_text()), source=str(path))
    assert set(config) <= set(BY_NAME)
    for name, entry in config.items():
        assert BY_NAME[name].validate(entry.properties) == [], name
    assert config["capacity-covers-demand"].properties["floors"]


def test_pulumi_policy_yaml() -> None:
    doc = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert doc["runtime"]["name"] == "python"
    assert doc["runtime"]["options"]["virtualenv"] == "venv"
    assert doc["version"]


def test_requirements_install_gpufleet_from_the_repository_root() -> None:
    # pip resolves ".." against its working directory; Pulumi runs pip in the pack directory.
    lines = [ln.strip() for ln in (PACK_DIR / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert ".." in lines and any(ln.startswith("pulumi-policy==") for ln in lines)
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index",
                          "--no-build-isolation", "-r", "requirements.txt"],
                         cwd=PACK_DIR, capture_output=True, text=True, timeout=300)
    assert f"Processing {REPO}\n" in out.stdout + "\n", out.stdout + out.stderr


def test_a_floor_takes_every_demand_field_of_the_spec_with_the_spec_bounds() -> None:
    from gpufleet.spec import InferencePoolDemand, TrainingClusterDemand, TrainingDemand, parse_fleet
    from tests.conftest import minimal_fleet

    declared = {*InferencePoolDemand.model_fields, *TrainingClusterDemand.model_fields, *TrainingDemand.model_fields}
    assert set(FLOOR_SCHEMA["properties"]) == declared - {"workload", "gpu"}
    # The same value is refused by the spec and by a floor, and accepted by both.
    for field, bad, good in (("demand_ramp_per_minute", 1.5, 0.5), ("survive_site_losses", -1, 1)):
        assert validate_json_schema({field: bad}, FLOOR_SCHEMA) and not validate_json_schema({field: good}, FLOOR_SCHEMA)
        fleet = minimal_fleet()
        fleet["inference"][0][field] = bad
        with pytest.raises(ValueError, match=field):
            parse_fleet(fleet)

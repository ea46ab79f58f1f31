"""AWS refusals from stack files: `gpufleet plan` exits 2 naming field, value and what is allowed, and
the program registers no resource; ODCR stacks name the reservation's placement group (old ones get a
migration message)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


STACKS = Path(__file__).resolve().parents[1] / "fixtures" / "stacks"
Cli = Callable[..., tuple[int, str, str]]
ODCR = """config:
  gpufleet:fleet:
    sites:
      - {name: aws-use2, cloud: aws, region: us-east-2, zones: [us-east-2a, us-east-2b], power_mw: 2.0,
         quota_gpus: {H100: 256}, price_per_gpu_hour: {p5.48xlarge: 6.88}}
    training:
      - {name: pretrain-8b, params: 8.0e9, tokens: 1.5e11, gpu: H100, deadline_days: 14, mfu: 0.4,
         capacity: {type: odcr, reservation_id: cr-0a1b2c3d4e5f60718, CAPACITY}}
"""


def _odcr_stack(tmp_path: Path, capacity: str) -> Path:
    stack = tmp_path / "Pulumi.odcr.yaml"
    stack.write_text(ODCR.replace("CAPACITY", capacity))
    return stack


def _refused_lines(run_cli: Cli, path: Path) -> list[str]:
    code, out, err = run_cli("plan", "--stack", str(path))
    assert code == 2 and out == "", err
    return [line for line in err.splitlines() if line.startswith("  - ")]


def test_zones_of_another_region_an_az_id_and_a_slash_8_are_refused(run_cli: Cli) -> None:
    lines = _refused_lines(run_cli, STACKS / "Pulumi.bad-aws-site.yaml")
    assert lines[0].startswith("  - fleet.sites[0].zones[1]: 'us-west-2b' is not an Availability Zone of region "
                               "'us-east-1' (allowed: zone names of us-east-1: pattern ^us-east-1[a-z]$")
    assert lines[1].startswith("  - fleet.sites[0].zones[2]: 'use1-az4' is not an Availability Zone")
    assert lines[2] == ("  - fleet.sites[0].network_cidr: 10.0.0.0/8 is a /8; an AWS VPC's block is /16 to /28 "
                        "(allowed: a /16 to /28 private range such as 10.0.0.0/16)")
    assert len(lines) == 3


@pytest.mark.parametrize("region", ["us-east-1; rm -rf /", "us-east-1\\nus-west-2", "us-east-1\\n"])
def test_a_region_with_shell_text_or_a_newline_exits_2_naming_field_and_pattern(
        region: str, run_cli: Cli, tmp_path: Path) -> None:
    text = (STACKS / "Pulumi.bad-aws-region.yaml").read_text().replace("us-east-1; rm -rf /", region)
    stack = tmp_path / "Pulumi.region.yaml"
    stack.write_text(text)
    (line,) = _refused_lines(run_cli, stack)
    shown = repr(region.replace("\\n", "\n"))
    assert line.startswith(f"  - fleet.sites[0].region: {shown} is not an AWS region code "
                           "(pattern ^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-[0-9]+$)")


def test_a_metric_in_a_reserved_namespace_is_refused(run_cli: Cli) -> None:
    (line,) = _refused_lines(run_cli, STACKS / "Pulumi.bad-aws-metric.yaml")
    assert line.startswith("  - fleet.inference[0].scaling.metric_namespace: CloudWatch namespace 'AWS/EC2' starts "
                           "with 'AWS/'")


def test_an_old_reservation_in_placement_group_flag_gets_a_migration_message(run_cli: Cli, tmp_path: Path) -> None:
    stack = _odcr_stack(tmp_path, "placement_group: true, reservation_in_placement_group: true")
    (line,) = _refused_lines(run_cli, stack)
    assert line.startswith("  - fleet.training[0].capacity.reservation_in_placement_group: was replaced by "
                           "placement_group_name: a reservation stays in the cluster placement group it was "
                           "created in")


def test_a_group_name_needs_an_odcr_launched_into_a_placement_group(run_cli: Cli, tmp_path: Path) -> None:
    (line,) = _refused_lines(run_cli, _odcr_stack(tmp_path, "placement_group: false, placement_group_name: pg"))
    assert "placement_group_name (an existing cluster placement group) is only valid with type odcr and " \
           "placement_group: true" in line


@pytest.mark.parametrize(("capacity", "name"), [
    ("placement_group: true, placement_group_name: reserved-p5", "reserved-p5"),  # the reservation's group
    ("placement_group: true", None),   # a reservation made outside any group also serves a new group
    ("placement_group: false", None),
])
def test_odcr_stacks_plan_with_the_group_they_name(capacity: str, name: str | None, run_cli: Cli,
                                                    tmp_path: Path) -> None:
    code, out, err = run_cli("plan", "--stack", str(_odcr_stack(tmp_path, capacity)), "--json")
    assert code == 0, err
    (pool,) = json.loads(out)["pools"]
    assert pool["placement_group_name"] == name

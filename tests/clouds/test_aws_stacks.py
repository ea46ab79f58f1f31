"""AWS refusals from stack files: `gpufleet plan` exits 2 naming field, value and what is allowed, and
the program registers no resource; old ODCR stacks get a migration message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gpufleet.errors import SpecError
from gpufleet.offline import run_program

STACKS = Path(__file__).resolve().parents[1] / "fixtures" / "stacks"
Cli = Callable[..., tuple[int, str, str]]


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


def test_an_odcr_with_a_placement_group_but_no_group_name_is_refused(run_cli: Cli) -> None:
    (line,) = _refused_lines(run_cli, STACKS / "Pulumi.bad-aws-odcr.yaml")
    assert line.startswith("  - fleet.training[0].capacity.placement_group_name: is required: reservation "
                           "cr-0a1b2c3d4e5f60718 can serve a cluster placement group only if it was created in it")


def test_a_metric_in_a_reserved_namespace_is_refused(run_cli: Cli) -> None:
    (line,) = _refused_lines(run_cli, STACKS / "Pulumi.bad-aws-metric.yaml")
    assert line.startswith("  - fleet.inference[0].scaling.metric_namespace: CloudWatch namespace 'AWS/EC2' starts "
                           "with 'AWS/'")


@pytest.mark.parametrize("name", ["bad-aws-site", "bad-aws-region", "bad-aws-odcr", "bad-aws-metric"])
def test_the_program_refuses_them_before_any_resource(name: str) -> None:
    run = run_program(STACKS / f"Pulumi.{name}.yaml", check=False)
    assert isinstance(run.error, SpecError), run.error
    assert run.resources == []


def test_an_old_reservation_in_placement_group_flag_gets_a_migration_message(run_cli: Cli, tmp_path: Path) -> None:
    text = (STACKS / "Pulumi.bad-aws-odcr.yaml").read_text().replace(
        "placement_group: true}", "placement_group: true, reservation_in_placement_group: true}")
    stack = tmp_path / "Pulumi.old.yaml"
    stack.write_text(text)
    (line,) = _refused_lines(run_cli, stack)
    assert line.startswith("  - fleet.training[0].capacity.reservation_in_placement_group: was replaced by "
                           "placement_group_name: a reservation stays in the cluster placement group it was "
                           "created in")


def test_naming_the_reservations_group_plans(run_cli: Cli, tmp_path: Path) -> None:
    text = (STACKS / "Pulumi.bad-aws-odcr.yaml").read_text().replace(
        "placement_group: true}", "placement_group: true, placement_group_name: reserved-p5}")
    stack = tmp_path / "Pulumi.named.yaml"
    stack.write_text(text)
    code, out, err = run_cli("plan", "--stack", str(stack), "--json")
    assert code == 0, err
    assert '"placement_group_name": "reserved-p5"' in out

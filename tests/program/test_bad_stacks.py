"""Bad input fails before any resource is registered, with one clear message listing every issue."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

import gpufleet.plan
from gpufleet.errors import InfeasiblePlanError, SpecError
from gpufleet.offline import OfflineRun, run_program

BAD_STACKS = Path(__file__).resolve().parents[1] / "fixtures" / "stacks"


def _refused(name: str) -> tuple[OfflineRun, str]:
    run = run_program(BAD_STACKS / f"Pulumi.{name}.yaml", check=False)
    assert isinstance(run.error, SpecError), run.error
    assert run.resources == [], [r.name for r in run.resources]  # not even a provider
    return run, str(run.error)


REFUSED = sorted(p for p in BAD_STACKS.glob("Pulumi.*.yaml") if p.name != "Pulumi.two-zone-training.yaml")
"""Every stack fixture a cloud or the spec refuses (two-zone-training is valid: its test injects a bad plan)."""


@pytest.mark.parametrize("path", REFUSED, ids=lambda p: p.stem.removeprefix("Pulumi."))
def test_every_refused_fixture_registers_no_resource(path: Path) -> None:
    _refused(path.stem.removeprefix("Pulumi."))


@pytest.mark.parametrize(("stack", "fragments"), [
    ("bad-vnet", ["fleet.sites[0].network_cidr", "172.16.0.0/16 overlaps 172.16.0.0/16", "InfiniBand"]),
    ("bad-fabric", ["fleet.training[0].instance_types", "a2-highgpu-8g, which has no GPU fabric on gcp",
                    "gpudirect-tcpx, gpudirect-tcpxo, rdma"]),
    ("bad-spec", ["2 errors in the input", "fleet.sites[0].power_mw", "fleet.sites[0].pue_ratio"]),
], ids=["overlapping-vnet", "fabricless-training-type", "spec-errors"])
def test_refused_before_any_resource_with_every_issue_named(stack: str, fragments: list[str]) -> None:
    _, text = _refused(stack)
    for fragment in fragments:
        assert fragment in text


def test_a_gcp_site_without_project_and_a_capacity_type_gcp_lacks_are_refused_before_any_resource() -> None:
    run, _ = _refused("bad-gcp-site")
    assert isinstance(run.error, SpecError)
    assert [(i.loc, i.message) for i in run.error.issues] == [
        ("fleet.sites[0].project", "a GCP site needs its project (the provider's project, and the RoCE network "
                                   "profile path)"),
        ("fleet.training[0].capacity.type", "capacity type 'capacity_block' does not exist on gcp"),
    ]


@pytest.mark.parametrize("command", ["plan", "preflight"])
@pytest.mark.parametrize("name", ["bad-vnet", "bad-fabric", "bad-gcp-site"])
def test_plan_and_preflight_refuse_what_the_program_refuses_with_the_same_message(
        name: str, command: str, run_cli: Callable[..., tuple[int, str, str]]) -> None:
    run, _ = _refused(name)
    assert isinstance(run.error, SpecError)
    code, out, err = run_cli(command, "--stack", str(BAD_STACKS / f"Pulumi.{name}.yaml"))
    assert code == 2 and out == ""
    assert [line for line in err.splitlines() if line.startswith("  - ")] == [
        f"  - {issue}" for issue in run.error.issues]


def test_training_spread_over_two_zones_is_refused_before_any_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    real = gpufleet.plan.build_plan

    def spreading_planner(spec: object, stack: str, **kwargs: object) -> gpufleet.plan.FleetPlan:
        plan = real(spec, stack, **kwargs)  # type: ignore[arg-type]
        spread = []
        for pool in plan.pools:
            half = pool.nodes // 2
            spread.append(dataclasses.replace(pool, zones=("us-east-1a", "us-east-1b"),
                                              nodes_by_zone={"us-east-1a": half, "us-east-1b": pool.nodes - half}))
        return dataclasses.replace(plan, pools=tuple(spread))

    monkeypatch.setattr(gpufleet.plan, "build_plan", spreading_planner)
    _, text = _refused("two-zone-training")
    assert "fleet.training[0].zone" in text
    assert "spread over zones us-east-1a, us-east-1b" in text


def test_infeasible_plans_are_refused_before_any_resource(tmp_path: Path) -> None:
    text = (BAD_STACKS / "Pulumi.two-zone-training.yaml").read_text().replace("quota_gpus: {H100: 256}",
                                                                              "quota_gpus: {H100: 8}")
    stack = tmp_path / "Pulumi.tiny-quota.yaml"
    stack.write_text(text)
    run = run_program(stack, check=False)
    assert isinstance(run.error, InfeasiblePlanError) and run.resources == []


def test_every_issue_is_listed_at_once(tmp_path: Path) -> None:
    text = (BAD_STACKS / "Pulumi.bad-vnet.yaml").read_text()
    text = text.replace("    training:", "    inference: []\n    training:")
    stack = tmp_path / "Pulumi.deploying.yaml"
    stack.write_text(text)
    run = run_program(stack, preview=False, check=False)  # `pulumi up`: the placeholder key is refused too
    assert isinstance(run.error, SpecError) and run.resources == []
    text = str(run.error)
    assert "2 errors in the input" in text
    assert "network_cidr" in text and "config.gpufleet:sshPublicKey: is the offline placeholder key" in text


def test_check_true_raises_the_programs_error() -> None:
    with pytest.raises(SpecError, match="InfiniBand"):
        run_program(BAD_STACKS / "Pulumi.bad-vnet.yaml")


def test_an_update_with_a_real_key_goes_through(tmp_path: Path) -> None:
    text = (BAD_STACKS / "Pulumi.bad-vnet.yaml").read_text().replace("172.16.0.0/16", "10.20.0.0/16")
    text = text.replace("config:\n", "config:\n  gpufleet:sshPublicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA op@host\n")
    stack = tmp_path / "Pulumi.ok.yaml"
    stack.write_text(text)
    run = run_program(stack, preview=False)
    assert run.notes == [] and "notes" not in run.outputs
    keys = [r for r in run.resources if r.type == "azure-native:compute:VirtualMachineScaleSet"]
    assert keys and all("op@host" in str(r.inputs) for r in keys)

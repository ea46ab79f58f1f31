"""Deploying several stacks: the order (stacks on one site one after another), the parallelism, what
a failure stops, and a clear error before anything starts when the Pulumi CLI is missing.

The orchestration runs against a fake :class:`~gpufleet.deploy.Deployer` (the seam); the real
:class:`~gpufleet.deploy.AutomationDeployer` is run with no Pulumi CLI on the PATH, its real error."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gpufleet.deploy import (
    AutomationDeployer,
    DeployTarget,
    PulumiUnavailableError,
    UpResult,
    deploy,
    plan_deploy,
)
from gpufleet.errors import SpecError
from gpufleet.stackset import expand_stacks

REPO = Path(__file__).resolve().parents[1]
STACKS = REPO / "stacks"


def target(name: str, *sites: str, after: tuple[str, ...] = ()) -> DeployTarget:
    return DeployTarget(name, Path(f"Pulumi.{name}.yaml"), REPO, REPO / "policies", None, sites, after)


class FakeDeployer:
    """Records each `up`; each waits (at most `hold_s`) until `wanted` ups run at once."""

    def __init__(self, codes: dict[str, int] | None = None, *, wanted: int = 0, hold_s: float = 5,
                 missing_cli: bool = False) -> None:
        self.codes = codes or {}
        self.wanted = wanted
        self.hold_s = hold_s
        self.missing_cli = missing_cli
        self.started: list[str] = []
        self.active = 0
        self.most_at_once = 0
        self.lock = threading.Condition()
        self.seen: list[DeployTarget] = []

    def check(self) -> str:
        if self.missing_cli:
            raise PulumiUnavailableError("the Pulumi CLI is not installed")
        return "3.200.0"

    def up(self, t: DeployTarget, say: Callable[[str], None]) -> UpResult:
        with self.lock:
            self.started.append(t.stack)
            self.seen.append(t)
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
            self.lock.notify_all()
            # Wait (bounded) for the others that may run beside this one, so overlap is observable.
            self.lock.wait_for(lambda: self.active >= self.wanted, timeout=self.hold_s)
            self.active -= 1
        say("Updating")
        code = self.codes.get(t.stack, 0)
        if code < 0:
            raise RuntimeError("the fake crashed")
        return UpResult(code, "succeeded: 2 create" if code == 0 else "failed")


def test_independent_stacks_run_in_parallel_up_to_jobs() -> None:
    fake = FakeDeployer(wanted=2)
    results = deploy([target(n, f"site-{n}") for n in "abcd"], fake, jobs=2)
    assert fake.most_at_once == 2
    assert [r.outcome.exit_code for r in results] == [0, 0, 0, 0]
    assert [r.summary for r in results] == ["succeeded: 2 create"] * 4


def test_stacks_sharing_a_site_never_run_at_once_and_keep_their_order() -> None:
    fake = FakeDeployer(wanted=3, hold_s=0.3)  # would see the others if they ran beside it
    targets = [target("a", "s1"), target("b", "s1", after=("a",)), target("c", "s1", after=("b",))]
    deploy(targets, fake, jobs=3)
    assert fake.started == ["a", "b", "c"] and fake.most_at_once == 1


def test_a_failed_stack_skips_only_the_stacks_after_it_on_its_sites() -> None:
    fake = FakeDeployer({"a": 1})
    targets = [target("a", "s1"), target("b", "s2"), target("c", "s1", after=("a",))]
    results = {r.target.stack: r for r in deploy(targets, fake, jobs=1)}
    assert fake.started == ["a", "b"]
    assert (results["c"].outcome.state, results["c"].outcome.reason) == ("skipped", "a failed (exit 1)")
    assert results["b"].outcome.exit_code == 0


def test_fail_fast_starts_no_other_stack() -> None:
    fake = FakeDeployer({"a": 3})
    results = deploy([target(n, f"site-{n}") for n in "abc"], fake, jobs=1, fail_fast=True)
    assert fake.started == ["a"]
    assert [r.outcome.state for r in results] == ["done", "not started", "not started"]


def test_a_crashing_up_is_that_stacks_internal_fault() -> None:
    fake = FakeDeployer({"a": -1})
    results = deploy([target("a", "s1"), target("b", "s2")], fake, jobs=2)
    assert results[0].outcome.exit_code == 1 and results[0].summary == "RuntimeError: the fake crashed"
    assert results[1].outcome.exit_code == 0


def test_a_missing_cli_starts_nothing() -> None:
    fake = FakeDeployer(missing_cli=True)
    with pytest.raises(PulumiUnavailableError):
        deploy([target("a", "s1")], fake, jobs=1)
    assert fake.started == []


def test_the_plan_orders_stacks_by_shared_sites_and_finds_their_pack_and_floors(tmp_path: Path) -> None:
    targets = {t.stack: t for t in plan_deploy(expand_stacks([STACKS]))}
    assert list(targets) == ["aks-inference", "aws-training", "azure-inference", "dev", "eks-inference", "gcp-a3ultra",
                             "gcp-tpu", "gke-a3ultra", "gke-tpu", "prod", "spot-inference"]
    assert targets["gcp-a3ultra"].after == ("dev",)  # both use gcp-usc1
    assert set(targets["prod"].after) >= {"azure-inference", "dev"}
    assert targets["aws-training"].after == ()
    assert targets["dev"].policy_pack == REPO / "policies" and targets["dev"].project_dir == REPO
    (tmp_path / "dev.json").write_text("{}")
    with_floors = {t.stack: t for t in plan_deploy(expand_stacks([STACKS]), policy_config_dir=tmp_path)}
    assert with_floors["dev"].policy_config == tmp_path / "dev.json" and with_floors["prod"].policy_config is None


def test_a_bad_stack_stops_the_plan_naming_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  gpufleet:fleet: {sites: []}\n")
    with pytest.raises(SpecError) as err:
        plan_deploy(expand_stacks([STACKS / "Pulumi.dev.yaml", bad]))
    assert str(bad) in str(err.value) and "fleet.sites" in str(err.value)


def test_without_the_pulumi_cli_the_real_deployer_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `pulumi`
    with pytest.raises(PulumiUnavailableError, match="the Pulumi CLI is not installed") as err:
        AutomationDeployer().check()
    assert err.value.exit_code == 4


def test_deploy_command_exits_4_before_anything_starts_without_the_cli(
        run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = run_cli("deploy", "--stack", str(STACKS / "Pulumi.dev.yaml"), "--yes")
    assert code == 4 and "the Pulumi CLI is not installed" in err and "nothing was deployed" in err
    assert "started" not in err and out == ""


def test_deploy_command_without_yes_prints_the_plan(run_cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = run_cli("deploy", "--stack", str(STACKS))
    assert code == 0
    count = len(list(STACKS.glob("Pulumi.*.yaml")))
    assert f"gpufleet deploy: {count} stacks, in this order" in out and "add --yes" in out
    row = next(line for line in out.splitlines() if "gcp-a3ultra" in line)
    assert "│ dev " in row  # after dev: both on gcp-usc1


def test_deploy_command_refuses_bad_input(run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    code, _, err = run_cli("deploy", "--stack", str(tmp_path), "--yes")
    assert code == 2 and "holds no Pulumi.*.yaml file" in err


# --- the real deployer against the installed SDK, with the CLI calls replaced -------------------


class SdkStack:
    """Stands for `pulumi.automation.Stack`: checks `up`'s arguments against the installed SDK's."""

    def __init__(self, calls: list[dict[str, Any]], fail_with_policy: str | None) -> None:
        self.calls = calls
        self.fail_with_policy = fail_with_policy

    def up(self, **kwargs: Any) -> Any:
        from pulumi import automation as auto

        inspect.signature(auto.Stack.up).bind(self, **kwargs)  # raises TypeError on an unknown argument
        self.calls.append(kwargs)
        kwargs["on_output"]("Updating (dev)")
        if self.fail_with_policy is not None:
            kwargs["on_event"](auto.EngineEvent.from_json({"policyEvent": {
                "policyName": "capacity-covers-demand", "message": "chat-8b: 3 nodes short",
                "enforcementLevel": self.fail_with_policy}}))
            raise auto.CommandError(auto.CommandResult("", "error: update failed", 255))
        return SimpleNamespace(summary=SimpleNamespace(result="succeeded", resource_changes={"create": 34, "same": 0}))


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> Callable[[str | None], list[dict[str, Any]]]:
    from pulumi import automation as auto

    def arrange(fail_with_policy: str | None) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []
        real = inspect.signature(auto.create_or_select_stack)

        def create_or_select_stack(**kwargs: Any) -> SdkStack:
            real.bind(**kwargs)
            calls.append(kwargs)
            return SdkStack(calls, fail_with_policy)

        monkeypatch.setattr(auto, "PulumiCommand", lambda: SimpleNamespace(version="3.272.0"))
        monkeypatch.setattr(auto, "create_or_select_stack", create_or_select_stack)
        return calls

    return arrange


def test_the_real_deployer_runs_up_with_the_pack_and_the_stack_file(sdk: Any, tmp_path: Path) -> None:
    calls = sdk(None)
    floors = tmp_path / "dev.json"
    t = DeployTarget("dev", STACKS / "Pulumi.dev.yaml", REPO, REPO / "policies", floors, ("aws-use1",))
    said: list[str] = []
    result = AutomationDeployer().up(t, said.append)
    assert result == UpResult(0, "succeeded: 34 create")
    select, up = calls
    assert select["stack_name"] == "dev" and select["work_dir"] == str(REPO)
    assert up["policy_packs"] == [str(REPO / "policies")] and up["policy_pack_configs"] == [str(floors)]
    assert up["config_file"] == str(STACKS / "Pulumi.dev.yaml") and said == ["Updating (dev)"]


@pytest.mark.parametrize(("level", "code"), [("mandatory", 3), ("advisory", 1)])
def test_a_failed_up_is_blocked_only_by_a_mandatory_policy(sdk: Any, level: str, code: int) -> None:
    sdk(level)
    result = AutomationDeployer().up(target("dev", "s1"), lambda _line: None)
    assert result.exit_code == code
    if code == 3:
        assert result.summary == ("blocked by 1 mandatory policy violation(s): capacity-covers-demand: "
                                  "chat-8b: 3 nodes short")
    else:
        assert "error: update failed" in result.summary


# --- `gpufleet deploy --format json` ------------------------------------------------------------

THREE = ["--stack", str(STACKS / "Pulumi.dev.yaml"), "--stack", str(STACKS / "Pulumi.aws-training.yaml"),
         "--stack", str(STACKS / "Pulumi.gcp-a3ultra.yaml")]  # gcp-a3ultra shares gcp-usc1 with dev


def test_deploy_json_reports_every_stack_in_order_with_its_exit_code(
        run_cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    fake = FakeDeployer({"dev": 3})
    monkeypatch.setattr("gpufleet.deploy.AutomationDeployer", lambda: fake)
    code, out, err = run_cli("deploy", *THREE, "--yes", "--format", "json", "--jobs", "1")
    assert code == 3
    doc = json.loads(out)  # stdout is the document alone; progress went to stderr
    assert "gpufleet deploy: dev started" in err
    assert (doc["command"], doc["deployed"], doc["exit_code"], doc["schema_version"]) == ("deploy", True, 3, 1)
    stacks = {s["stack"]: s for s in doc["stacks"]}
    assert list(stacks) == ["dev", "aws-training", "gcp-a3ultra"]
    assert (stacks["dev"]["state"], stacks["dev"]["exit_code"], stacks["dev"]["result"]) == ("done", 3, "blocked")
    assert stacks["aws-training"]["summary"] == "succeeded: 2 create" and stacks["aws-training"]["result"] == "pass"
    skipped = stacks["gcp-a3ultra"]
    assert (skipped["state"], skipped["exit_code"], skipped["result"]) == ("skipped", None, "not run")
    assert skipped["reason"] == "dev failed (exit 3)" and skipped["after"] == ["dev"]
    assert skipped["sites"] == ["gcp-usc1"] and skipped["stack_file"].endswith("Pulumi.gcp-a3ultra.yaml")
    assert fake.started == ["dev", "aws-training"]


def test_deploy_json_without_yes_is_the_plan(run_cli: Callable[..., tuple[int, str, str]]) -> None:
    import json

    code, out, _ = run_cli("deploy", *THREE, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["deployed"] is False and doc["exit_code"] == 0
    assert [(s["stack"], s["after"]) for s in doc["stacks"]] == [("dev", []), ("aws-training", []),
                                                                  ("gcp-a3ultra", ["dev"])]
    assert "state" not in doc["stacks"][0] and doc["stacks"][0]["policy_pack"] == str(REPO / "policies")


def test_deploy_json_with_the_real_deployer_reports_up_and_a_blocked_stack(
        run_cli: Callable[..., tuple[int, str, str]], sdk: Any) -> None:
    import json

    sdk("mandatory")
    code, out, _ = run_cli("deploy", "--stack", str(STACKS / "Pulumi.dev.yaml"), "--yes", "--format", "json")
    (dev,) = json.loads(out)["stacks"]
    assert code == 3 and dev["exit_code"] == 3
    assert dev["summary"] == "blocked by 1 mandatory policy violation(s): capacity-covers-demand: chat-8b: 3 nodes short"


def test_deploy_json_without_the_cli_prints_no_document(
        run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = run_cli("deploy", *THREE, "--yes", "--format", "json")
    assert code == 4 and out == "" and "the Pulumi CLI is not installed" in err

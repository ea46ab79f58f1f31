"""The pack through the engine's own protocol: a process started as Pulumi starts it, spoken to with
``AnalyzerStub`` (GetAnalyzerInfo, Configure, AnalyzeStack), resources serialised as the engine does."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from gpufleet.engine import (
    PolicyConfigEntry,
    PolicyEngine,
    PolicyEngineError,
    parse_policy_config,
    reconcile_policy_config,
)
from gpufleet.engine import Violation as Diagnostic
from gpufleet.errors import SpecError
from tests.policies.conftest import PACK_DIR
from tests.policies.policy_baseline import UNKNOWN, Stack

POLICIES = ["capacity-covers-demand", "gpu-quota-respected", "model-fits-memory", "on-demand-floor-covers-peak",
            "policies-ran-cleanly", "power-within-envelope", "replicas-fit-node-pools", "runway-covers-lead-time",
            "shared-site-limits", "survives-zone-loss",
            "training-fabric-complete", "warm-capacity-covers-boot-time"]


def analyze(engine: PolicyEngine, stack: Stack, config: dict[str, Any] | None = None) -> list[Diagnostic]:
    return engine.run(stack.stack_resources(), parse_policy_config(config or {})).diagnostics


def by_policy(diags: list[Diagnostic]) -> dict[str, list[Diagnostic]]:
    out: dict[str, list[Diagnostic]] = {}
    for d in diags:
        out.setdefault(d.policy, []).append(d)
    return out


def test_pack_starts_as_pulumi_starts_it(engine: PolicyEngine) -> None:
    assert engine.argv[1:] == ["-u", "-m", "pulumi.policy", "127.0.0.1:0", "."]
    assert engine.process is not None and engine.process.poll() is None
    assert engine.port and engine.port > 0


def test_process_is_stopped_on_close() -> None:
    eng = PolicyEngine(PACK_DIR)
    try:
        eng.start()
        proc = eng.process
        assert proc is not None and proc.poll() is None
    finally:
        eng.close()
    assert proc.poll() is not None
    assert eng.process is None


def test_analyzer_info_describes_every_policy(engine: PolicyEngine) -> None:
    info = engine.info()
    assert info.name == "gpufleet"
    assert [p.name for p in info.policies] == POLICIES
    levels = {p.name: p.enforcement for p in info.policies}
    assert levels["capacity-covers-demand"] == "mandatory"
    assert levels["warm-capacity-covers-boot-time"] == "advisory"
    assert levels["gpu-quota-respected"] == "advisory"
    for p in info.policies:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)+", p.name)
        assert p.description and p.kind == "stack"
    floors = info.policy("capacity-covers-demand").config_schema["properties"]["floors"]  # type: ignore[index]
    assert floors["default"] == {}
    assert info.policy("warm-capacity-covers-boot-time").config_schema["properties"]["default_boot_minutes"]["default"] == 10  # type: ignore[index]


def test_compliant_stack_yields_no_diagnostics(engine: PolicyEngine, stack: Stack) -> None:
    assert analyze(engine, stack) == []


def test_per_resource_analyze_finds_nothing_for_stack_policies(engine: PolicyEngine, stack: Stack) -> None:
    engine.configure(reconcile_policy_config(engine.info()))
    assert engine.analyze(stack.stack_resources()[0]) == []


def test_under_provisioned_stack_yields_the_mandatory_violations(engine: PolicyEngine, stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = 8
    stack.props("chat-70b-aws-use1-asg")["availabilityZones"] = ["us-east-1a", "us-east-1b"]
    lt = stack.props("pretrain-70b-aws-use1-lt")
    lt["networkInterfaces"] = lt["networkInterfaces"][:9]
    stack.props("gcp-usc1")["power_mw"] = 0.2
    stack.props("chat-8b-gcp-usc1")["demand"]["gpus_per_replica"] = 2
    diags = by_policy(analyze(engine, stack))
    assert set(diags) == {"capacity-covers-demand", "survives-zone-loss", "training-fabric-complete",
                          "power-within-envelope", "model-fits-memory", "runway-covers-lead-time"}
    assert all(d.enforcement == "mandatory" and d.blocking for ds in diags.values() for d in ds)
    [cap] = diags["capacity-covers-demand"]
    assert cap.message.startswith("chat-70b: 8 nodes provisioned at the 90-day horizon, forecast needs 11 "
                                  "(3 nodes, 24 H100 short)")
    assert cap.urn.endswith("gpufleet:index:InferencePool::chat-70b-aws-use1")
    assert cap.description.startswith("Each workload's provisioned capacity covers its forecast demand")
    [fabric] = diags["training-fabric-complete"]
    assert "attaches 8 of the 32 EFA interfaces" in fabric.message
    [power] = diags["power-within-envelope"]
    assert power.message.startswith("gcp-usc1: 0.26 MW at full scale exceeds the 0.2 MW envelope")
    assert power.urn.endswith("gpufleet:index:SiteNetwork::gcp-usc1")
    [memory] = diags["model-fits-memory"]
    assert memory.message.startswith("chat-8b-gcp-usc1: 2 × L4 per replica hold 43 GB usable")


def test_advisory_findings_do_not_block(engine: PolicyEngine, stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["minSize"] = 1
    stack.props("gcp-usc1")["quota_gpus"]["L4"] = 8
    diags = analyze(engine, stack)
    assert {(d.policy, d.enforcement) for d in diags} == {("warm-capacity-covers-boot-time", "advisory"),
                                                         ("gpu-quota-respected", "advisory")}
    assert not any(d.blocking for d in diags)


def test_asg_maximum_lowered_by_hand_in_the_recorded_resources_is_caught(engine: PolicyEngine, stack: Stack) -> None:
    # The same resources, only the ASG's maxSize edited: the component still declares 18 nodes.
    assert analyze(engine, stack) == []
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = 10
    assert stack.props("chat-70b-aws-use1")["max_nodes"] == 18
    diags = analyze(engine, stack)
    assert [(d.policy, d.enforcement) for d in diags] == [("capacity-covers-demand", "mandatory"),
                                                         ("survives-zone-loss", "mandatory"),
                                                         ("runway-covers-lead-time", "mandatory")]
    assert "10 nodes provisioned" in diags[0].message


def test_floors_in_the_policy_config(engine: PolicyEngine, stack: Stack) -> None:
    config = {"capacity-covers-demand": {"floors": {"chat-8b": {"peak_tokens_per_s": 20000}}}}
    [d] = analyze(engine, stack, config)
    assert d.policy == "capacity-covers-demand" and d.enforcement == "mandatory"
    assert d.message.startswith("chat-8b: 12 nodes provisioned at the 90-day horizon, forecast needs 14")
    assert "policy config floor" in d.message


def test_enforcement_level_from_the_config(engine: PolicyEngine, stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = 8
    config = {"capacity-covers-demand": "advisory", "survives-zone-loss": {"enforcementLevel": "disabled"},
              "runway-covers-lead-time": "disabled"}
    [d] = analyze(engine, stack, config)
    assert (d.policy, d.enforcement) == ("capacity-covers-demand", "advisory")
    assert analyze(engine, stack, {"all": "disabled"}) == []


def test_unknown_deciding_values_fail_closed_as_mandatory_by_default(engine: PolicyEngine, stack: Stack) -> None:
    stack.props("chat-8b-gcp-usc1-autoscaler")["autoscalingPolicy"]["maxReplicas"] = UNKNOWN
    stack.props("pretrain-70b-aws-use1-asg")["maxSize"] = 40  # still reported alongside
    diags = by_policy(analyze(engine, stack))
    [cap_real, cap_unknown] = sorted(diags["capacity-covers-demand"], key=lambda d: "cannot verify" in d.message)
    assert cap_real.enforcement == "mandatory" and cap_real.message.startswith("pretrain-70b: 40 nodes provisioned")
    assert cap_unknown.enforcement == "mandatory"
    assert cap_unknown.message.startswith(
        "chat-8b-gcp-usc1-mig: cannot verify the node maximum because it is unknown until apply")
    # the advisory warm-capacity policy cannot verify it either: policies-ran-cleanly blocks for it
    assert [d.enforcement for d in diags["warm-capacity-covers-boot-time"]] == ["advisory"]
    clean = [d for d in diags["policies-ran-cleanly"] if "policy warm-capacity-covers-boot-time" in d.message]
    assert [d.enforcement for d in clean] == ["mandatory"]
    assert "chat-8b-gcp-usc1-mig: cannot verify the node maximum" in clean[0].message


def test_unknown_values_advisory_gives_the_engines_advisory_note(engine: PolicyEngine, stack: Stack) -> None:
    stack.props("chat-8b-gcp-usc1-autoscaler")["autoscalingPolicy"]["maxReplicas"] = UNKNOWN
    stack.props("pretrain-70b-aws-use1-asg")["maxSize"] = 40  # still reported alongside
    config = {p.name: {"unknown_values": "advisory"} for p in engine.info().policies if p.name != "policies-ran-cleanly"}
    diags = by_policy(analyze(engine, stack, config))
    [cap_real, cap_unknown] = sorted(diags["capacity-covers-demand"], key=lambda d: d.enforcement, reverse=True)
    assert cap_real.enforcement == "mandatory" and cap_real.message.startswith("pretrain-70b: 40 nodes provisioned")
    assert cap_unknown.enforcement == "advisory"
    assert "can't run policy 'capacity-covers-demand'" in cap_unknown.message
    assert "chat-8b-gcp-usc1-mig: cannot verify the node maximum because it is unknown until apply" in cap_unknown.message
    assert "policies-ran-cleanly" not in diags


def test_every_silent_unknown_now_fails_closed(engine: PolicyEngine, stack: Stack) -> None:
    # singlePlacementGroup, resourcePolicies (no dependency naming the workload policy) and a site's quota
    stack.props("finetune-8b-azure-eastus-island-0")["singlePlacementGroup"] = UNKNOWN
    stack.named("posttrain-30b-gcp-usc1-mig")["dependencies"] = []
    site = next(r for r in stack if r["type"] == "gpufleet:index:SiteNetwork" and r["properties"].get("quota_gpus"))
    site["properties"]["quota_gpus"] = {k: UNKNOWN for k in site["properties"]["quota_gpus"]}
    diags = by_policy(analyze(engine, stack))
    fabric = " ".join(d.message for d in diags["training-fabric-complete"] if d.enforcement == "mandatory")
    assert "finetune-8b-azure-eastus-island-0: cannot verify singlePlacementGroup because it is unknown" in fabric
    assert ("posttrain-30b-gcp-usc1-mig: cannot verify resourcePolicies.workloadPolicy because it is unknown"
            in fabric)
    [clean] = diags["policies-ran-cleanly"]  # gpu-quota-respected is advisory: this policy blocks for it
    assert clean.enforcement == "mandatory"
    assert f"{site['name']}: cannot verify quota_gpus because it is unknown until apply" in clean.message


def test_a_policy_that_raises_fails_closed(engine: PolicyEngine, stack: Stack) -> None:
    stack.props("chat-70b-aws-use1")["demand"]["horizon_days"] = "ninety"
    diags = by_policy(analyze(engine, stack))
    [cap] = diags["capacity-covers-demand"]
    assert cap.enforcement == "mandatory"
    assert "policy capacity-covers-demand failed with ValueError" in cap.message
    assert "Treated as a violation (fail closed)" in cap.message
    # The advisory warm-capacity policy crashed too: policies-ran-cleanly blocks on its behalf.
    [warm] = diags["warm-capacity-covers-boot-time"]
    assert warm.enforcement == "advisory"
    [clean] = diags["policies-ran-cleanly"]
    assert clean.enforcement == "mandatory"
    assert "policy warm-capacity-covers-boot-time failed with ValueError" in clean.message


def test_a_crash_in_a_policy_lowered_to_advisory_by_config_still_fails_closed(engine: PolicyEngine,
                                                                              stack: Stack) -> None:
    stack.props("chat-70b-aws-use1")["demand"]["horizon_days"] = "ninety"
    diags = by_policy(analyze(engine, stack, {"capacity-covers-demand": "advisory"}))
    assert [d.enforcement for d in diags["capacity-covers-demand"]] == ["advisory"]
    clean = [d for d in diags["policies-ran-cleanly"] if "policy capacity-covers-demand failed" in d.message]
    assert [d.enforcement for d in clean] == ["mandatory"]


def test_config_for_a_policy_the_pack_lacks_is_handled_like_the_engine(engine: PolicyEngine) -> None:
    info = engine.info()
    # an object entry gets no enforcement level from any policy: the engine's Configure refuses it
    with pytest.raises(SpecError) as exc:
        reconcile_policy_config(info, parse_policy_config({"capacity-covers-deman": {"floors": {}}}),
                                strict=False, source="bad.json")
    assert 'capacity-covers-deman: invalid enforcement level ""' in str(exc.value)
    assert "did you mean 'capacity-covers-demand'?" in str(exc.value)
    # an entry with a level is sent and ignored by the pack
    lenient = reconcile_policy_config(info, parse_policy_config({"nope": "advisory", "gone": {"enforcementLevel":
                                                                                               "mandatory"}}),
                                      strict=False)
    assert "nope" not in lenient and "gone" not in lenient


def test_the_journal_does_not_leak_into_the_next_analysis(engine: PolicyEngine, stack: Stack) -> None:
    stack.props("chat-70b-aws-use1")["demand"]["horizon_days"] = "ninety"
    assert analyze(engine, stack)
    stack.props("chat-70b-aws-use1")["demand"]["horizon_days"] = 90
    assert analyze(engine, stack) == []


@pytest.mark.parametrize(("config", "expected"), [
    ({"capacity-covers-demand": {"floors": {"chat-70b": {"peak_tokens_per_s": -5}}}},
     "capacity-covers-demand.floors.chat-70b.peak_tokens_per_s: must be greater than 0, got -5"),
    ({"capacity-covers-demand": {"floors": {"chat-70b": {"peak_tokens": 5}}}},
     "capacity-covers-demand.floors.chat-70b.peak_tokens: unknown property"),
    ({"capacity-covers-demand": {"floors": {"Chat 70B": {"peak_tokens_per_s": 5}}}},
     "capacity-covers-demand.floors.Chat 70B (name): 'Chat 70B' does not match"),
    ({"capacity-covers-demand": {"floor": {}}},
     "capacity-covers-demand.floor: unknown property (allowed: floors, unknown_values)"),
    ({"capacity-covers-deman": {"floors": {}}},
     "capacity-covers-deman: no policy of that name in the pack"),
    ({"power-within-envelope": {"max_utilization": 1.5}},
     "power-within-envelope.max_utilization: must be at most 1, got 1.5"),
    ({"training-fabric-complete": {"min_nodes": 1.5}}, "training-fabric-complete.min_nodes: must be a whole number"),
])
def test_bad_policy_config_is_rejected_with_a_clear_message(engine: PolicyEngine, config: dict[str, Any],
                                                           expected: str) -> None:
    with pytest.raises(SpecError) as exc:
        reconcile_policy_config(engine.info(), parse_policy_config(config), source="bad.json")
    assert expected in str(exc.value)
    assert str(exc.value).startswith("bad.json: ")


def test_bad_enforcement_level_is_rejected() -> None:
    with pytest.raises(SpecError, match='"sometimes" is not a valid enforcement level'):
        parse_policy_config({"capacity-covers-demand": {"enforcementLevel": "sometimes"}})


def test_lenient_reconcile_behaves_like_the_engine(engine: PolicyEngine) -> None:
    # The engine ignores unknown policies and properties a schema does not name; the pack itself
    # then reports the unknown property as a violation (fail closed).
    config = reconcile_policy_config(engine.info(), parse_policy_config({"nope": "advisory",
                                                                         "capacity-covers-demand": {"floor": {}}}),
                                     strict=False)
    assert config["capacity-covers-demand"] == PolicyConfigEntry(
        "mandatory", {"floors": {}, "unknown_values": "mandatory", "floor": {}})


def test_pack_reports_a_config_the_engine_let_through(engine: PolicyEngine, stack: Stack) -> None:
    engine.configure(reconcile_policy_config(engine.info(), parse_policy_config(
        {"capacity-covers-demand": {"floor": {"chat-70b": {}}}}), strict=False))
    [d] = engine.analyze_stack(stack.stack_resources())
    assert (d.policy, d.enforcement) == ("capacity-covers-demand", "mandatory")
    assert ("did not run: its policy config is invalid: floor: unknown property (allowed: floors, unknown_values)"
            in d.message)


def test_a_pack_that_cannot_start_is_an_internal_fault(tmp_path: Any) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("raise SystemExit('broken pack')\n")
    with pytest.raises(PolicyEngineError, match="exited with code 1") as exc:
        PolicyEngine(tmp_path, startup_timeout=20).start()
    assert exc.value.exit_code == 1
    with pytest.raises(PolicyEngineError, match="no policy pack"):
        PolicyEngine(tmp_path / "missing").start()


def test_main_only_builds_the_pack() -> None:
    source = (PACK_DIR / "__main__.py").read_text()
    code = [line for line in source.splitlines() if line.strip() and not line.startswith(("#", '"""', "from", "import"))]
    assert "PolicyPack(" in source
    assert not any("def " in line or "class " in line for line in code)


def test_pack_runs_from_its_own_directory_with_a_fresh_interpreter() -> None:
    # What `pulumi preview --policy-pack policies` runs; its only output on stdout is the port.
    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", "."], cwd=PACK_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        assert line.isdigit()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

"""The pack reads the stack once per ``AnalyzeStack``: every policy shares one conversion of the request,
one list of plain resources and one inventory (each rule on its own copy), and reports exactly what it
reported when each policy read the stack itself."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy import policy as sdk

import gpufleet.policy.pack as pack
from gpufleet.engine.client import to_analyzer_resource
from gpufleet.policy.config import POLICIES
from gpufleet.policy.resources import build_inventory
from gpufleet.policy.rules import RULES
from tests.policies.policy_baseline import UNKNOWN, Stack, baseline


def _unknowns(stack: Stack) -> Stack:
    """Unknown values a reader records in its pool while a rule runs (fabric) and a site's unknown quota."""
    stack.props("finetune-8b-azure-eastus-island-0")["singlePlacementGroup"] = UNKNOWN
    stack.named("posttrain-30b-gcp-usc1-mig")["dependencies"] = []
    site = next(r for r in stack if r["type"] == "gpufleet:index:SiteNetwork" and r["properties"].get("quota_gpus"))
    site["properties"]["quota_gpus"] = {k: UNKNOWN for k in site["properties"]["quota_gpus"]}
    return stack


def _crash(stack: Stack) -> Stack:
    stack.props("chat-70b-aws-use1")["demand"]["horizon_days"] = "ninety"
    return stack


def _short(stack: Stack) -> Stack:
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = 4
    return stack


STACKS: dict[str, Callable[[Stack], Stack]] = {
    "compliant": lambda s: s, "unknowns": _unknowns, "crash": _crash, "short": _short}


def _servicer() -> Any:
    """The servicer ``PolicyPack`` serves, in this process (its gRPC server is not needed)."""
    return sdk._PolicyAnalyzerServicer(  # noqa: SLF001
        "gpufleet", "0.0.1", pack.build_policies(), EnforcementLevel.ADVISORY, None, None, None, None, None, None, None)


def _analyze(stack: Stack, *, shared: bool) -> list[tuple[str, str, str, int]]:
    request = analyzer_pb2.AnalyzeStackRequest(resources=[to_analyzer_resource(r) for r in stack.stack_resources()])
    servicer = _servicer()
    method = sdk._PolicyAnalyzerServicer.AnalyzeStack  # noqa: SLF001
    response = method(servicer, request, None) if shared else method.__wrapped__(servicer, request, None)
    return [(d.policyName, d.urn, d.message, d.enforcementLevel) for d in response.diagnostics]


def test_the_servicer_still_converts_the_stack_where_the_shared_reading_expects() -> None:
    pack.share_stack_reading()
    pack.share_stack_reading()  # idempotent: one wrapper, one json_format shim
    wrapped = sdk._PolicyAnalyzerServicer.AnalyzeStack  # noqa: SLF001
    assert wrapped.gpufleet_shared and not getattr(wrapped.__wrapped__, "gpufleet_shared", False)
    assert isinstance(sdk.json_format, pack._OnceJsonFormat)  # type: ignore[attr-defined]
    assert not isinstance(sdk.json_format.module, pack._OnceJsonFormat)  # type: ignore[attr-defined]
    for name in ("deserialize_properties", "unknown_checking_proxy"):
        shared = getattr(sdk, name)
        assert shared.gpufleet_shared and not getattr(shared.__wrapped__, "gpufleet_shared", False)
    # What the shared reading relies on in the pinned pulumi-policy: per policy, each resource's
    # Struct converted with json_format.MessageToDict, deserialised and wrapped in a read-only proxy,
    # all through this module's globals.
    source = inspect.getsource(wrapped.__wrapped__)
    assert "deserialize_properties(json_format.MessageToDict(r.properties))" in source
    assert "props = unknown_checking_proxy(deserialized)" in source


@pytest.mark.parametrize("name", sorted(STACKS))
def test_every_policy_reports_what_it_reported_reading_the_stack_itself(name: str) -> None:
    pack.share_stack_reading()
    shared = _analyze(STACKS[name](baseline()), shared=True)
    alone = _analyze(STACKS[name](baseline()), shared=False)
    assert shared == alone
    if name != "compliant":
        assert shared  # the stack has findings: the comparison means something


def test_one_analysis_reads_the_stack_once(monkeypatch: pytest.MonkeyPatch) -> None:
    pack.share_stack_reading()
    counts = {"to_resources": 0, "build_inventory": 0, "MessageToDict": 0}

    def counting(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(pack, "to_resources", counting("to_resources", pack.to_resources))
    monkeypatch.setattr(pack, "build_inventory", counting("build_inventory", pack.build_inventory))
    shim = sdk.json_format  # type: ignore[attr-defined]
    monkeypatch.setattr(shim, "module", type("Counted", (), {
        "MessageToDict": staticmethod(counting("MessageToDict", shim.module.MessageToDict))})())
    stack = _unknowns(baseline())
    _analyze(stack, shared=True)
    rules = sum(1 for spec in POLICIES if spec.name in RULES)
    assert rules > 5
    assert counts == {"to_resources": 1, "build_inventory": 1, "MessageToDict": len(stack)}
    counts.update(dict.fromkeys(counts, 0))
    _analyze(stack, shared=False)  # as pulumi_policy alone does it: once per policy
    assert counts["to_resources"] == rules and counts["build_inventory"] == rules
    assert counts["MessageToDict"] == len(stack) * (rules + 1)


@pytest.mark.parametrize("name", sorted(STACKS))
def test_a_rule_changes_only_its_own_copy_of_the_inventory(name: str) -> None:
    shared = build_inventory(STACKS[name](baseline()).policy_resources())
    before = copy.deepcopy(shared)
    for spec in POLICIES:
        if spec.name in RULES:
            try:
                RULES[spec.name](shared.copy(), spec.with_defaults({}))
            except ValueError:
                assert name == "crash"
    assert shared == before

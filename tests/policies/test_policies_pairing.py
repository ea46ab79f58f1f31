"""Which node group an autoscaler scales, through the engine's protocol: paired only by a real link (a
known target, a dependency, or the names the components give a group and its autoscaler). An
autoscaler nothing links to a group, and the free groups of its pool, fail closed: the rules report
that they cannot verify them, instead of guessing a pair from the order of the names."""

from __future__ import annotations

from gpufleet.engine import PolicyEngine
from gpufleet.engine import Violation as Diagnostic
from tests.policies.policy_baseline import Stack
from tests.policies.test_policies_engine import analyze

SCALER = "chat-8b-gcp-usc1-autoscaler"
MIG = "chat-8b-gcp-usc1-mig"


def _rename(stack: Stack, name: str, new: str) -> None:
    """The resource under another logical name (its URN follows), as a stack written by hand may have."""
    r = stack.named(name)
    r["name"] = new
    r["urn"] = r["urn"].rsplit("::", 1)[0] + f"::{new}"


def _capacity(diags: list[Diagnostic]) -> list[str]:
    return [d.message for d in diags if d.policy == "capacity-covers-demand" and d.enforcement == "mandatory"]


def test_the_baseline_pairs_its_autoscaler_by_the_components_names(engine: PolicyEngine, stack: Stack) -> None:
    # Its target is unknown during the preview and it records no dependency: the names are the link.
    assert stack.props(SCALER)["target"] != stack.props(MIG)["name"] and not stack.named(SCALER)["dependencies"]
    assert _capacity(analyze(engine, stack)) == []


def test_an_autoscaler_nothing_links_to_a_group_fails_closed(engine: PolicyEngine, stack: Stack) -> None:
    _rename(stack, SCALER, "chat-8b-scaler")  # no target, no dependency, no component name: no pair
    messages = _capacity(analyze(engine, stack))
    assert any(m.startswith("chat-8b-scaler: cannot verify which node group of pool chat-8b-gcp-usc1 it scales")
               for m in messages), messages
    # nor is the group's own size taken for its bounds: its autoscaler may be that one
    assert any(m.startswith(f"{MIG}: cannot verify the node maximum") for m in messages), messages


def test_a_dependency_links_an_autoscaler_of_any_name(engine: PolicyEngine, stack: Stack) -> None:
    _rename(stack, SCALER, "chat-8b-scaler")
    stack.named("chat-8b-scaler")["dependencies"] = [stack.named(MIG)["urn"]]
    assert _capacity(analyze(engine, stack)) == []


def test_a_lowered_maximum_on_a_linked_autoscaler_still_blocks(engine: PolicyEngine, stack: Stack) -> None:
    _rename(stack, SCALER, "chat-8b-scaler")
    stack.named("chat-8b-scaler")["dependencies"] = [stack.named(MIG)["urn"]]
    stack.props("chat-8b-scaler")["autoscalingPolicy"]["maxReplicas"] = 4
    messages = _capacity(analyze(engine, stack))
    assert any(m.startswith("chat-8b: 4 nodes provisioned") for m in messages), messages

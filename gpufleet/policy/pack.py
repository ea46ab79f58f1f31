"""The CrossGuard objects: one ``StackValidationPolicy`` per rule, and the pack that holds them.

Every policy is a stack policy: capacity is a property of the whole stack (a pool's component, its
node groups, its autoscalers and its site's network), never of one resource.

Failing closed: a rule that raises, or a policy config the pack cannot use, becomes a violation that
names the error, never a silent pass. A policy reports it itself; when its level is not mandatory (by
default or lowered by the policy config) ``policies-ran-cleanly``, which runs last, reports it again
as mandatory.

Unknown values: a rule that could not read a deciding value (unknown during a preview) reports what
it could, then fails closed the same way with one "<subject>: cannot verify <what> because it is
unknown until apply" violation per value. A policy whose config sets ``unknown_values: advisory``
raises ``UnknownValueError`` instead, so the engine shows its advisory "can't run policy during
preview" note naming the values.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gpufleet.policy.config import POLICIES, RAN_CLEANLY, UNKNOWN_VALUES_SETTING, PolicySpec
from gpufleet.policy.resources import Inventory, Resource, build_inventory
from gpufleet.policy.rules import RULES, Rule, RuleResult

PACK_NAME = "gpufleet"
PACK_DESCRIPTION = ("gpufleet: blocks GPU fleet plans that cannot carry their demand (capacity, zone loss, "
                    "fabric, power, memory, quota).")

_journal = threading.local()


def _journal_entries(fingerprint: int) -> list[str]:
    """This thread's list of failures for the stack being analysed (others are dropped)."""
    if getattr(_journal, "fingerprint", None) != fingerprint:
        _journal.fingerprint = fingerprint
        _journal.entries = []
    entries: list[str] = _journal.entries
    return entries


def to_resources(policy_resources: Iterable[Any]) -> list[Resource]:
    """``PolicyResource`` objects → plain :class:`Resource` (unknowns kept as sentinel strings)."""
    from pulumi_policy.deserialize import serialize_properties

    out = []
    for r in policy_resources:
        props = serialize_properties(r.props)
        parent = r.parent.urn if getattr(r, "parent", None) is not None else (r.opts.parent if r.opts else None)
        dependencies = tuple(d.urn for d in getattr(r, "dependencies", None) or [])
        out.append(Resource(type=r.resource_type, name=r.name, urn=r.urn, props=dict(props), parent=parent or None,
                            dependencies=dependencies))
    return out


def run_rule(spec: PolicySpec, rule: Rule, resources: Sequence[Resource], config: Mapping[str, Any] | None) -> RuleResult:
    """Validate the config, build the inventory and run the rule (no Pulumi involved).

    Raises:
        ValueError: the config does not validate (the message lists every problem).
        Exception: whatever the rule raised.
    """
    problems = spec.validate(config)
    if problems:
        raise ValueError(f"its policy config is invalid: {'; '.join(problems)}")
    inventory: Inventory = build_inventory(resources)
    return rule(inventory, spec.with_defaults(config))


def _describe_failure(spec: PolicySpec, exc: BaseException) -> str:
    if isinstance(exc, ValueError) and str(exc).startswith("its policy config is invalid"):
        return f"policy {spec.name} did not run: {exc}. Treated as a violation (fail closed)."
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))
    return (f"policy {spec.name} failed with {type(exc).__name__}: {exc} (at {where}). Treated as a violation "
            "(fail closed): report this bug in the gpufleet policy pack.")


def effective_level(report_violation: Any, default: str) -> str:
    """The enforcement level the engine's config gave the running policy.

    ``pulumi_policy`` resolves it (the policy config's level, else the policy's own) into the
    ``report_violation`` closure it hands ``validate`` and nowhere else; ``default`` when that closure
    changes shape (``tests/policies/test_policies_engine.py`` fails loudly then).
    """
    code = getattr(report_violation, "__code__", None)
    cells = getattr(report_violation, "__closure__", None) or ()
    if code is None or "enforcement_level" not in code.co_freevars:
        return default
    value = cells[code.co_freevars.index("enforcement_level")].cell_contents
    return str(getattr(value, "value", value))


def make_policy(spec: PolicySpec, rule: Rule) -> Any:
    """The ``StackValidationPolicy`` for one rule, with the fail-closed wrapper around it."""
    from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity, StackValidationPolicy
    from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UnknownValueError

    def validate(args: Any, report_violation: Any) -> None:
        fingerprint = hash(tuple(r.urn for r in args.resources))
        journal = _journal_entries(fingerprint)
        level = effective_level(report_violation, spec.enforcement)

        def fail_closed(message: str) -> None:
            report_violation(message, None)
            if level != "mandatory":
                journal.append(message)  # policies-ran-cleanly reports it as mandatory

        try:
            result = run_rule(spec, rule, to_resources(args.resources), args.get_config())
        except Exception as exc:  # noqa: BLE001 - fail closed: every failure becomes a violation
            fail_closed(_describe_failure(spec, exc))
            return
        for finding in result.findings:
            report_violation(finding.message, finding.urn or None)
        unknown = list(dict.fromkeys(result.unknown))
        if not unknown:
            return
        if (args.get_config() or {}).get(UNKNOWN_VALUES_SETTING) == "advisory":
            error = UnknownValueError(UNKNOWN_NUMBER_VALUE, [])
            error.message = "; ".join(unknown)
            raise error
        for message in unknown:
            fail_closed(f"{message} (policy {spec.name}; set {UNKNOWN_VALUES_SETTING}: advisory in its policy "
                        "config to report it as advisory)")

    return StackValidationPolicy(
        name=spec.name,
        description=spec.description,
        validate=validate,
        enforcement_level=EnforcementLevel(spec.enforcement),
        config_schema=PolicyConfigSchema(properties=spec.properties) if spec.properties else None,
        severity=Severity(spec.severity),
        remediation_steps=spec.remediation or None,
        tags=["gpufleet", "capacity"],
    )


def make_ran_cleanly_policy() -> Any:
    """``policies-ran-cleanly``: reports, as mandatory, the failures of the advisory policies."""
    from pulumi_policy import EnforcementLevel, Severity, StackValidationPolicy

    def validate(args: Any, report_violation: Any) -> None:
        fingerprint = hash(tuple(r.urn for r in args.resources))
        journal = _journal_entries(fingerprint)
        for message in journal:
            report_violation(message, None)
        journal.clear()

    return StackValidationPolicy(
        name=RAN_CLEANLY.name,
        description=RAN_CLEANLY.description,
        validate=validate,
        enforcement_level=EnforcementLevel(RAN_CLEANLY.enforcement),
        severity=Severity(RAN_CLEANLY.severity),
        remediation_steps=RAN_CLEANLY.remediation,
        tags=["gpufleet"],
    )


def build_policies() -> list[Any]:
    """Every policy of the pack, in order (``policies-ran-cleanly`` last)."""
    return [make_policy(spec, RULES[spec.name]) if spec.name in RULES else make_ran_cleanly_policy()
            for spec in POLICIES]


__all__ = ["PACK_DESCRIPTION", "PACK_NAME", "build_policies", "effective_level", "make_policy", "run_rule",
           "to_resources"]

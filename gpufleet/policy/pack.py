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

Reading the stack once: ``pulumi_policy`` hands every stack policy its own copy of the stack,
converted from the request again for each (``MessageToDict``, deserialisation and the unknown-checking
proxy per resource, per policy). :func:`share_stack_reading` makes that conversion, the plain
resources and the inventory happen once per ``AnalyzeStack`` request and be shared by every policy of
it (each rule gets its own copy of the inventory's pools and sites, which readers may add unknowns
to); what each policy receives is unchanged.
"""

from __future__ import annotations

import functools
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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


def run_rule(spec: PolicySpec, rule: Rule, resources: Sequence[Resource], config: Mapping[str, Any] | None,
             *, inventory: Callable[[], Inventory] | None = None) -> RuleResult:
    """Validate the config, build the inventory and run the rule (no Pulumi involved).

    Args:
        inventory: gives the inventory of ``resources`` already built (shared by the policies of one
            analysis); by default it is built here, after the config is validated.

    Raises:
        ValueError: the config does not validate (the message lists every problem).
        Exception: whatever the rule raised.
    """
    problems = spec.validate(config)
    if problems:
        raise ValueError(f"its policy config is invalid: {'; '.join(problems)}")
    inv: Inventory = inventory() if inventory is not None else build_inventory(resources)
    return rule(inv, spec.with_defaults(config))


# --- one reading of the stack per AnalyzeStack -------------------------------------------------------

_analysis = threading.local()
"""``reading``: the :class:`_StackReading` of the ``AnalyzeStack`` this thread is serving, if any."""


@dataclass
class _StackReading:
    """What every policy of one ``AnalyzeStack`` request reads alike, computed by the first that needs it.

    Attributes:
        urns: the request's resources, in order: a policy whose resources differ reads its own.
        memo: ``(function, id(argument)) → (argument, result)`` for the conversions
            ``pulumi_policy`` repeats per policy (the argument is kept, so an id is never reused
            while the request is served).
    """

    urns: tuple[str, ...]
    memo: dict[tuple[Any, int], tuple[Any, Any]] = field(default_factory=dict)
    resources: list[Resource] | None = None
    inventory: Inventory | None = None

    def once(self, function: Callable[[Any], Any], argument: Any) -> Any:
        """``function(argument)``, computed once per argument object for this request."""
        key = (function, id(argument))
        hit = self.memo.get(key)
        if hit is not None and hit[0] is argument:
            return hit[1]
        value = function(argument)
        self.memo[key] = (argument, value)
        return value

    def plain_resources(self, policy_resources: Sequence[Any]) -> list[Resource]:
        if self.resources is None:
            self.resources = to_resources(policy_resources)
        return self.resources

    def inventory_copy(self) -> Inventory:
        """The inventory, built once; each rule gets its own copy of what a rule may change."""
        if self.inventory is None:
            assert self.resources is not None
            self.inventory = build_inventory(self.resources)
        return self.inventory.copy()


def _reading() -> _StackReading | None:
    reading: _StackReading | None = getattr(_analysis, "reading", None)
    return reading


def _once_per_request(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (one argument) computed once per argument object while an ``AnalyzeStack`` is served."""
    @functools.wraps(function)
    def call(argument: Any, *args: Any, **kwargs: Any) -> Any:
        reading = _reading()
        if reading is None or args or kwargs:
            return function(argument, *args, **kwargs)
        return reading.once(function, argument)

    call.gpufleet_shared = True  # type: ignore[attr-defined]
    return call


class _OnceJsonFormat:
    """``google.protobuf.json_format`` as ``pulumi_policy.policy`` uses it, except that while an
    ``AnalyzeStack`` is served, ``MessageToDict`` converts each of its Structs once."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 (protobuf's name)
        reading = _reading()
        if reading is None or args or kwargs or message.DESCRIPTOR.full_name != "google.protobuf.Struct":
            return self.module.MessageToDict(message, *args, **kwargs)
        return reading.once(self.module.MessageToDict, message)


def share_stack_reading() -> None:
    """Make each ``AnalyzeStack`` of this process read the stack once for all its policies (idempotent).

    Wraps ``pulumi_policy``'s servicer: while it serves an ``AnalyzeStack``, each resource's property
    Struct is converted (``json_format.MessageToDict``), deserialised (``deserialize_properties``) and
    wrapped (``unknown_checking_proxy``) once, each policy receiving the same proxy: the policies of
    this pack only read a resource's properties (:func:`to_resources`), never set them, so none can
    change what the next one reads; and they share one list of plain resources and one inventory
    (:func:`_policy_inputs`). Relies on the servicer's
    shape in the pinned ``pulumi-policy`` (``tests/policies/test_policies_shared_reading.py`` fails
    loudly when it changes).
    """
    from pulumi_policy import policy as sdk

    servicer = sdk._PolicyAnalyzerServicer  # noqa: SLF001 - the one place the stack is converted
    analyze_stack: Any = servicer.AnalyzeStack
    if not getattr(analyze_stack, "gpufleet_shared", False):
        @functools.wraps(analyze_stack)
        def shared_analyze_stack(self: Any, request: Any, context: Any) -> Any:
            _analysis.reading = _StackReading(tuple(r.urn for r in request.resources))
            try:
                return analyze_stack(self, request, context)
            finally:
                _analysis.reading = None

        shared_analyze_stack.gpufleet_shared = True  # type: ignore[attr-defined]
        setattr(servicer, "AnalyzeStack", shared_analyze_stack)  # noqa: B010 - replacing a method
    json_format = getattr(sdk, "json_format")  # noqa: B009 - not re-exported by the module
    if not isinstance(json_format, _OnceJsonFormat):
        setattr(sdk, "json_format", _OnceJsonFormat(json_format))  # noqa: B010
    for name in ("deserialize_properties", "unknown_checking_proxy"):
        function = getattr(sdk, name)
        if not getattr(function, "gpufleet_shared", False):
            setattr(sdk, name, _once_per_request(function))


def _policy_inputs(policy_resources: Sequence[Any]) -> tuple[list[Resource], Callable[[], Inventory] | None]:
    """The plain resources of a policy's arguments and, inside a shared ``AnalyzeStack`` whose
    resources these are, the shared inventory; else the resources converted here and no inventory."""
    reading = _reading()
    if reading is None or tuple(r.urn for r in policy_resources) != reading.urns:
        return to_resources(policy_resources), None
    return reading.plain_resources(policy_resources), reading.inventory_copy


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
            resources, inventory = _policy_inputs(args.resources)
            result = run_rule(spec, rule, resources, args.get_config(), inventory=inventory)
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
    """Every policy of the pack, in order (``policies-ran-cleanly`` last). Building them also makes the
    pack read the stack once per analysis (:func:`share_stack_reading`)."""
    share_stack_reading()
    return [make_policy(spec, RULES[spec.name]) if spec.name in RULES else make_ran_cleanly_policy()
            for spec in POLICIES]


__all__ = ["PACK_DESCRIPTION", "PACK_NAME", "build_policies", "effective_level", "make_policy", "run_rule",
           "share_stack_reading", "to_resources"]

"""Policy config as the Pulumi engine handles it: read a ``--policy-pack-config`` file, then reconcile
it with the policies the pack describes (schema defaults, the pack's initial config, the file) and
validate every policy's properties against its schema.

One difference from the engine, on purpose: :func:`reconcile_policy_config` with ``strict=True`` also
rejects config keys a policy's schema does not name and config for policies the pack does not have
(the engine ignores the first, so a typo silently drops a floor). With ``strict=False`` it does what
the engine does with config for a policy the pack lacks: ``applyConfig`` in
``pkg/resource/analyzer/config.go`` keeps the entry, and ``Configure`` in
``pkg/resource/plugin/analyzer_plugin.go`` then fails with ``invalid enforcement level ""`` when the
entry is an object without ``enforcementLevel``; an entry with a level is sent and ignored by the pack.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpufleet.engine.schema import brief_json, validate_json_schema
from gpufleet.engine.violations import ENFORCEMENT_LEVELS
from gpufleet.errors import Issue, SpecError
from gpufleet.inputs import parse_json, read_text


@dataclass(frozen=True)
class PolicyConfigEntry:
    """One policy's config as the engine sends it: an enforcement level and properties."""

    enforcement: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


def load_policy_config(path: str | Path) -> dict[str, PolicyConfigEntry]:
    """Read a ``--policy-pack-config`` JSON file the way the Pulumi engine parses it.

    Each top-level key names a policy (or ``all``); its value is an enforcement level string or an
    object with an optional ``enforcementLevel`` and the policy's properties.

    Raises:
        SpecError: the file cannot be read, is not JSON, or is not shaped like a policy config.
    """
    source = str(path)
    text = read_text(path, what="policy-config")
    if not text.strip():
        return {}

    def malformed(exc: json.JSONDecodeError) -> SpecError:
        return SpecError(Issue("policy-config", f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                               'an object such as {"capacity-covers-demand": {"floors": {...}}}'), source=source)

    # Duplicate keys are refused: a second entry for a policy would silently drop the first's floors.
    data = parse_json(text, source=source, what="policy-config", syntax=malformed)
    return parse_policy_config(data, source=source)


def parse_policy_config(data: Any, *, source: str = "") -> dict[str, PolicyConfigEntry]:
    """Validate the shape of an already-parsed policy config (see :func:`load_policy_config`)."""
    if not isinstance(data, Mapping):
        raise SpecError(Issue("policy-config", f"must be a JSON object keyed by policy name, got {brief_json(data)}"),
                        source=source)
    issues: list[Issue] = []
    result: dict[str, PolicyConfigEntry] = {}
    for name, value in data.items():
        if isinstance(value, str):
            if value not in ENFORCEMENT_LEVELS:
                issues.append(Issue(name, f"{value!r} is not a valid enforcement level", ", ".join(ENFORCEMENT_LEVELS)))
                continue
            result[name] = PolicyConfigEntry(enforcement=value)
        elif isinstance(value, Mapping):
            props = dict(value)
            level = props.pop("enforcementLevel", None)
            if level is not None and level not in ENFORCEMENT_LEVELS:
                issues.append(Issue(f"{name}.enforcementLevel", f"{brief_json(level)} is not a valid enforcement level",
                                    ", ".join(ENFORCEMENT_LEVELS)))
                continue
            if level is None and not props:
                continue  # the engine drops empty entries
            result[name] = PolicyConfigEntry(enforcement=level, properties=props)
        else:
            issues.append(Issue(name, f"{brief_json(value)} is not a valid value",
                                "an enforcement level string or an object of the policy's properties"))
    if issues:
        raise SpecError(issues, source=source)
    return result


@dataclass(frozen=True)
class PolicyInfo:
    """A policy as ``GetAnalyzerInfo`` describes it."""

    name: str
    description: str
    enforcement: str
    config_schema: dict[str, Any] | None  # {"properties": {...}, "required": [...]}
    kind: str  # "stack", "resource" or "unspecified"
    remediation_steps: str = ""
    url: str = ""


@dataclass(frozen=True)
class PackInfo:
    """The pack as ``GetAnalyzerInfo`` describes it."""

    name: str
    version: str
    policies: tuple[PolicyInfo, ...]
    supports_config: bool = True
    initial_config: dict[str, PolicyConfigEntry] = field(default_factory=dict)

    def policy(self, name: str) -> PolicyInfo:
        return next(p for p in self.policies if p.name == name)


def reconcile_policy_config(
    info: PackInfo,
    config: Mapping[str, PolicyConfigEntry] | None = None,
    *,
    strict: bool = True,
    source: str = "",
) -> dict[str, PolicyConfigEntry]:
    """Every policy's effective config: schema defaults, then the pack's initial config, then ``config``.

    Mirrors the engine's ``ReconcilePolicyPackConfig``: an ``all`` entry sets every enforcement level,
    and each policy's properties must validate against its schema.

    Args:
        strict: also refuse config for a policy the pack does not have, and properties a policy's
            schema does not name. Without it, like the engine: properties a schema does not name are
            kept, and an object entry for a policy the pack lacks, with no ``enforcementLevel``, is an
            invalid enforcement level (an entry with a level is ignored).

    Raises:
        SpecError: listing every validation error, each located as ``<policy>.<property path>``.
    """
    config = dict(config or {})
    result: dict[str, PolicyConfigEntry] = {}
    for p in info.policies:
        schema_props = (p.config_schema or {}).get("properties", {})
        defaults = {k: v["default"] for k, v in schema_props.items() if isinstance(v, Mapping) and "default" in v}
        result[p.name] = PolicyConfigEntry(enforcement=p.enforcement, properties=json.loads(json.dumps(defaults)))
    for layer in (info.initial_config, config):
        all_level = layer.get("all")
        if all_level is not None and all_level.enforcement:
            result = {k: PolicyConfigEntry(all_level.enforcement, v.properties) for k, v in result.items()}
        for name, given in layer.items():
            if name == "all":
                continue
            current = result.get(name, PolicyConfigEntry())
            result[name] = PolicyConfigEntry(
                enforcement=given.enforcement or current.enforcement,
                properties={**current.properties, **given.properties},
            )
    issues: list[Issue] = []
    known = {p.name for p in info.policies}
    for name in sorted(set(result) - known):
        if not strict and not result[name].enforcement:
            issues.append(Issue(name, 'invalid enforcement level "" (the pack has no policy of that name, so '
                                "nothing gives this object entry a level; the engine's Configure refuses it)",
                                ", ".join(sorted(known)) + _did_you_mean(name, known)))
    if strict:
        for name in config:
            if name != "all" and name not in known:
                issues.append(Issue(name, "no policy of that name in the pack",
                                    ", ".join(sorted(known)) + _did_you_mean(name, known)))
    for p in info.policies:
        if p.config_schema is None:
            continue
        props = result[p.name].properties
        schema = {"type": "object", "properties": p.config_schema.get("properties", {})}
        if p.config_schema.get("required"):
            schema["required"] = list(p.config_schema["required"])
        if strict:
            schema["additionalProperties"] = False
        for error in validate_json_schema(props, schema):
            loc, _, message = error.partition(": ")
            issues.append(Issue(p.name if loc == "(root)" else f"{p.name}.{loc}", message))
    if issues:
        raise SpecError(issues, source=source or "policy config")
    return {k: v for k, v in result.items() if k in known}


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


__all__ = [
    "PackInfo",
    "PolicyConfigEntry",
    "PolicyInfo",
    "load_policy_config",
    "parse_policy_config",
    "reconcile_policy_config",
]

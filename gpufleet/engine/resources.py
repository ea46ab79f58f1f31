"""The stack's resources as the engine sends them to ``AnalyzeStack``: the :class:`StackResource`
model, the URN helpers, and the marking of values unknown during a preview with Pulumi's sentinel.
Pure: no I/O, no Pulumi import.

The engine sends each resource's *outputs* (``pkg/resource/deploy/step_generator.go`` builds every
``AnalyzerStackResource`` from ``v.Outputs``): a custom resource's provider state, a component's
``register_outputs`` values (``step_executor.go``'s ``ExecuteRegisterResourceOutputs``), nothing for a
component that registered none. During a preview a new resource's outputs are its inputs plus
*unknown* computed values (ids, ARNs, self links), and every input built from one is unknown too:
:func:`analyzed_resources` sends an offline run the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpufleet.names import UNKNOWN_SENTINEL


@dataclass(frozen=True)
class StackResource:
    """One resource of the stack as ``AnalyzeStack`` receives it.

    Attributes:
        properties: camelCase property names as the engine sees them; numbers may be floats;
            unknown values are Pulumi's sentinel strings.
        parent: URN of the parent resource, if any.
        provider: URN of the provider resource, if any.
    """

    type: str
    name: str
    urn: str
    properties: dict[str, Any]
    parent: str | None = None
    provider: str | None = None
    dependencies: tuple[str, ...] = ()

    @classmethod
    def from_recorded(cls, recorded: Any) -> StackResource:
        """From a ``gpufleet.offline`` recorded resource (``type``, ``name``, ``urn``, ``inputs``,
        ``parent``, ``provider``), or a mapping with those keys."""
        from gpufleet.offline.records import UNKNOWN as OFFLINE_UNKNOWN

        get = recorded.get if isinstance(recorded, Mapping) else lambda k, d=None: getattr(recorded, k, d)
        provider = get("provider", None)
        props = get("inputs", None) or get("properties", None) or {}
        return cls(
            type=str(get("type")),
            name=str(get("name")),
            urn=str(get("urn")),
            properties=_with_unknowns(props, OFFLINE_UNKNOWN),
            parent=get("parent", None) or None,
            provider=provider_urn(provider) if provider else None,
        )


def analyzed_resources(run: Any) -> list[StackResource]:
    """What ``AnalyzeStack`` receives for an offline run (``gpufleet.offline.OfflineRun``): the stack
    resource (its outputs), then every resource's outputs, in the run's order.

    In a preview run (``run.preview``), the values a provider computes are unknown: the id and every
    key the mocks filled in that is not an input (:attr:`RecordedResource.computed`), and any value,
    anywhere in the stack, equal to one of them (an ASG's subnet ids, a component's node group ids,
    an export), as the engine would propagate them.
    """
    from gpufleet.offline.records import UNKNOWN as OFFLINE_UNKNOWN

    preview = bool(getattr(run, "preview", True))
    computed = _computed_values(run.resources) if preview else set()
    stack = StackResource(type="pulumi:pulumi:Stack", name=f"{run.project}-{run.stack}", urn=run.stack_urn,
                          properties=_blank(dict(run.outputs), computed, OFFLINE_UNKNOWN))
    out = [stack]
    for r in run.resources:
        if r.custom and not preview:
            props = dict(r.outputs if r.outputs is not None else r.inputs)
        elif r.custom:
            props = {**r.inputs, **{k: OFFLINE_UNKNOWN for k in r.computed}}
        else:
            props = dict(r.outputs or {})
        out.append(_from_record(r, _blank(props, computed, OFFLINE_UNKNOWN)))
    return out


def _from_record(recorded: Any, properties: dict[str, Any]) -> StackResource:
    """A :class:`StackResource` for a recorded resource with the given (already marked) properties."""
    return StackResource(type=recorded.type, name=recorded.name, urn=recorded.urn, properties=properties,
                         parent=recorded.parent or None,
                         provider=provider_urn(recorded.provider) if recorded.provider else None,
                         dependencies=tuple(recorded.dependencies))


def _computed_values(resources: Sequence[Any]) -> set[str]:
    """Every id and computed string value of the run's custom resources (providers excluded: their
    references are known during a preview)."""
    values: set[str] = set()
    for r in resources:
        if not r.custom or r.is_provider:
            continue
        if r.id:
            values.add(r.id)
        for key in r.computed:
            value = (r.outputs or {}).get(key)
            if isinstance(value, str) and value and value != r.name:
                values.add(value)
    return values


def _blank(value: Any, computed: set[str], marker: str) -> Any:
    """``value`` with every string equal to a computed value replaced by the unknown marker, then
    the marker replaced by the engine's sentinel."""
    kind = type(value)  # plain JSON types first, without an ABC check per value (55,000 values at 200 services)
    if kind is str:
        return UNKNOWN_SENTINEL if value == marker or value in computed else value
    if kind is dict:
        return {str(k): _blank(v, computed, marker) for k, v in value.items()}
    if kind is list:
        return [_blank(v, computed, marker) for v in value]
    if kind in (int, float, bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _blank(v, computed, marker) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_blank(v, computed, marker) for v in value]
    if isinstance(value, str) and (value == marker or value in computed):
        return UNKNOWN_SENTINEL
    return value


def _with_unknowns(value: Any, marker: str) -> Any:
    """A plain copy of ``value`` with the offline runner's unknown marker replaced by the engine's."""
    if isinstance(value, Mapping):
        return {str(k): _with_unknowns(v, marker) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_with_unknowns(v, marker) for v in value]
    return UNKNOWN_SENTINEL if value == marker else value


def provider_urn(reference: str) -> str:
    """The URN in a provider reference ``<urn>::<id>`` (a bare URN is returned as is)."""
    # A URN has three "::" separators (urn:pulumi:stack::project::type::name); a reference adds the id.
    return reference.rpartition("::")[0] if reference.count("::") >= 4 else reference


def urn_type(urn: str) -> str:
    """The resource type in a URN (``urn:pulumi:stack::project::parent$type::name``)."""
    parts = urn.split("::")
    return parts[2].rsplit("$", 1)[-1] if len(parts) >= 4 else ""


__all__ = ["StackResource", "analyzed_resources", "provider_urn", "urn_type"]

"""The stack's resources as the engine sends them to ``AnalyzeStack``: the :class:`StackResource`
model, the URN helpers, and the marking of values unknown during a preview with Pulumi's sentinel.
Pure: no I/O, no Pulumi import.
"""

from __future__ import annotations

from collections.abc import Mapping
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


__all__ = ["StackResource", "provider_urn", "urn_type"]

"""Policy findings: Pulumi's enforcement levels and the one :class:`Violation` type gpufleet reports.

The engine client turns each ``AnalyzeDiagnostic`` the pack sends into a :class:`Violation`;
``gpufleet preview`` names its resource and renders it (text, JSON, Markdown, SARIF). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENFORCEMENT_LEVELS: tuple[str, ...] = ("advisory", "mandatory", "remediate", "disabled")
"""Pulumi's enforcement levels, as policy config files spell them."""
PROTO_LEVELS: Mapping[int, str] = {0: "advisory", 1: "mandatory", 2: "disabled", 3: "remediate"}
"""The ``EnforcementLevel`` protobuf enum of the analyzer protocol, number → name."""
BLOCKING_LEVELS = frozenset({"mandatory", "remediate"})
"""Levels at which a finding blocks the preview (exit 3)."""


@dataclass(frozen=True)
class Violation:
    """A policy finding, as the pack reports it and reports show it.

    Attributes:
        policy: the policy's name.
        enforcement: ``advisory``, ``mandatory``, ``disabled`` or ``remediate``.
        message: the finding (the engine's message without the policy description before it).
        resource: the URN the finding is about (None: the stack as a whole).
        resource_name: that resource's logical name, when known.
        description: the policy's description.
    """

    policy: str
    enforcement: str
    message: str
    resource: str | None = None
    resource_name: str | None = None
    description: str = ""

    @property
    def urn(self) -> str:
        """The resource's URN as the engine spells it ("" for the stack as a whole)."""
        return self.resource or ""

    @property
    def blocking(self) -> bool:
        return self.enforcement in BLOCKING_LEVELS

    def to_json(self) -> dict[str, Any]:
        """The finding in ``gpufleet preview --format json`` (key order is part of the contract)."""
        return {"policy": self.policy, "enforcement": self.enforcement, "resource": self.resource,
                "message": self.message, "resource_name": self.resource_name}


def violations_from(response: Any) -> list[Violation]:
    """The findings of an ``AnalyzeResponse``, each message stripped of the policy description."""
    out = []
    for d in response.diagnostics:
        message = d.message
        if d.description and message.startswith(d.description):
            message = message[len(d.description):].lstrip("\n")
        out.append(Violation(policy=d.policyName, enforcement=PROTO_LEVELS[int(d.enforcementLevel)],
                             message=message, resource=d.urn or None, description=d.description))
    return out


__all__ = ["BLOCKING_LEVELS", "ENFORCEMENT_LEVELS", "PROTO_LEVELS", "Violation", "violations_from"]

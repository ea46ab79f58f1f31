"""One side of a diff: a stack's plan and the policy verdicts on it, or why there is no plan.

Pure: tests and the CLI build sides the same way (:mod:`gpufleet.diff.sources` does the I/O).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gpufleet.diff.figures import HOURS_PER_MONTH, Runway, rounded
from gpufleet.plan import FleetPlan, PoolPlan

SideStatus = Literal["present", "absent", "infeasible"]
Verdict = Literal["pass", "blocked"]


@dataclass(frozen=True)
class Violation:
    """One policy violation reported by the policy pack.

    Attributes:
        policy: the policy name, e.g. ``capacity-covers-demand``.
        enforcement: ``mandatory`` or ``remediate`` (both block), ``advisory`` (warns), ``disabled``.
        resource: the resource the violation is about, as its URN ("" for the stack as a whole).
        message: what the policy said.
        resource_name: the resource's logical name, for display ("" when unknown).
    """

    policy: str
    enforcement: str
    resource: str
    message: str
    resource_name: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What makes two violations "the same" across base and head: policy and resource."""
        return (self.policy, self.resource)

    @property
    def mandatory(self) -> bool:
        """Blocks the plan (Pulumi's ``remediate`` level blocks as ``mandatory`` does)."""
        return self.enforcement in ("mandatory", "remediate")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Violation:
        """From one entry of ``PreviewResult.to_json()["violations"]``."""
        return cls(
            policy=str(data.get("policy", "")),
            enforcement=str(data.get("enforcement", "advisory")),
            resource=str(data.get("resource") or ""),
            message=str(data.get("message", "")),
            resource_name=str(data.get("resource_name") or ""),
        )

    def to_json(self) -> dict[str, str]:
        return {"policy": self.policy, "enforcement": self.enforcement, "resource": self.resource,
                "resource_name": self.resource_name, "message": self.message}


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a stack's plan and the policy verdicts on it.

    Attributes:
        label: ``base`` or ``head``.
        source: where the stack came from, as the user gave it (a path, or ``REF:PATH``).
        stack: the stack name (``prod`` for ``Pulumi.prod.yaml``).
        status: ``present`` (planned), ``absent`` (the stack does not exist on this side: a new or
            a deleted stack) or ``infeasible`` (no placement satisfies it; ``error`` says why).
        plan: the plan, when ``status`` is ``present``.
        violations: what the policy pack reported on this side; ``None`` when it was not run.
        verdict: the policy run's own verdict (``pass`` / ``blocked``), if it gave one.
        error: why there is no plan (``infeasible``).
        runway: each inference service's runway at the plan's confidence, counted from ``as_of``
            (empty when not computed).
    """

    label: str
    source: str
    stack: str
    status: SideStatus = "present"
    plan: FleetPlan | None = None
    violations: tuple[Violation, ...] | None = ()
    verdict: Verdict | None = None
    error: str | None = None
    runway: Mapping[str, Runway] = field(default_factory=dict)
    as_of: dt.date | None = None

    @classmethod
    def planned(cls, label: str, source: str, plan: FleetPlan,
                violations: Iterable[Violation | Mapping[str, Any]] | None = (),
                verdict: Verdict | None = None, *, runway: Mapping[str, Runway] | None = None,
                as_of: dt.date | None = None) -> Side:
        """A side with a plan; violations may be :class:`Violation` objects or preview JSON dicts."""
        found = None if violations is None else tuple(
            v if isinstance(v, Violation) else Violation.from_json(v) for v in violations)
        return cls(label=label, source=source, stack=plan.stack, status="present", plan=plan,
                   violations=found, verdict=verdict, runway=dict(runway or {}), as_of=as_of)

    @classmethod
    def absent(cls, label: str, source: str, stack: str) -> Side:
        """The stack does not exist on this side (a new stack's base, a deleted stack's head)."""
        return cls(label=label, source=source, stack=stack, status="absent", plan=None, violations=())

    @classmethod
    def infeasible(cls, label: str, source: str, stack: str, error: str) -> Side:
        """The stack validates but no placement satisfies it: nothing can be deployed."""
        return cls(label=label, source=source, stack=stack, status="infeasible", plan=None,
                   violations=(), verdict="blocked", error=error)

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations or () if v.mandatory)

    @property
    def advisory(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations or () if v.enforcement == "advisory")

    @property
    def blocked(self) -> bool:
        """Nothing of this side can be deployed: infeasible, or a mandatory policy blocks it."""
        return self.status == "infeasible" or self.verdict == "blocked" or bool(self.mandatory)

    @property
    def pools(self) -> tuple[PoolPlan, ...]:
        return self.plan.pools if self.plan else ()

    @property
    def gpus_by_model(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.pools:
            out[p.gpu] = out.get(p.gpu, 0) + p.gpus
        return dict(sorted(out.items()))

    @property
    def gpus(self) -> int:
        return self.plan.gpus if self.plan else 0

    @property
    def power_mw(self) -> float:
        return self.plan.power_mw if self.plan else 0.0

    @property
    def usd_per_month(self) -> float:
        return self.plan.usd_per_hour * HOURS_PER_MONTH if self.plan else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "source": self.source,
            "stack": self.stack,
            "status": self.status,
            "error": self.error,
            "verdict": "blocked" if self.blocked else "pass",
            "policy_evaluated": self.violations is not None,
            "gpus": self.gpus,
            "gpus_by_model": self.gpus_by_model,
            "power_mw": rounded(self.power_mw),
            "usd_per_month": rounded(self.usd_per_month, 2),
            "mandatory_violations": len(self.mandatory),
            "advisory_violations": len(self.advisory),
            "runway_as_of": self.as_of.isoformat() if self.as_of else None,
        }

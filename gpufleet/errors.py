"""The few exception types gpufleet raises, and the exit codes the CLI maps them to.

Hierarchy::

    GpufleetError                  any failure gpufleet explains itself (exit 1 unless below)
    ├── SpecError (ValueError)     bad input: a stack file, a flag, a policy config (exit 2)
    │                              carries every Issue found, each with its field path and a hint
    ├── CatalogError               the catalog has no such row, or a row is inconsistent (exit 2)
    └── InfeasiblePlanError        no placement satisfies power, quota and zone constraints (exit 3)

Errors carry *where* (``loc``: a dotted field path such as ``fleet.inference[1].growth_per_month``)
and *how to fix* (``hint``), so the CLI can print them without a traceback; :mod:`gpufleet.validation`
turns pydantic errors into issues.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_BLOCKED = 3  # infeasible placement, mandatory policy violation, preflight shortfall
EXIT_NOT_CHECKED = 4  # preflight: some checks could not run (no credentials, API down)


@dataclass(frozen=True)
class Issue:
    """One problem found in user input.

    Attributes:
        loc: dotted path of the offending field, e.g. ``fleet.sites[0].power_mw``.
        message: what is wrong, including the bad value.
        hint: what is allowed, or how to fix it.
    """

    loc: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.loc}: {self.message}"
        return f"{text} (allowed: {self.hint})" if self.hint else text


class GpufleetError(Exception):
    """Base class for every error gpufleet raises on purpose."""

    exit_code: int = EXIT_INTERNAL


class SpecError(GpufleetError, ValueError):
    """The input does not validate. Holds *all* issues found, not only the first."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, issues: list[Issue] | Issue, source: str = "") -> None:
        self.issues: list[Issue] = [issues] if isinstance(issues, Issue) else list(issues)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.source}: " if self.source else ""
        n = len(self.issues)
        lines = [f"{head}{n} error{'s' if n != 1 else ''} in the input"]
        lines += [f"  - {issue}" for issue in self.issues]
        return "\n".join(lines)


class CatalogError(GpufleetError, ValueError):
    """An instance type or GPU model is not in the catalog, or a catalog row is malformed."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, loc: str = "", hint: str = "") -> None:
        self.loc = loc
        self.hint = hint
        text = f"{loc}: {message}" if loc else message
        super().__init__(f"{text} (allowed: {hint})" if hint else text)


@dataclass
class BindingConstraint:
    """A constraint that makes a placement infeasible, and the smallest relaxation that would help."""

    kind: str  # "power" | "quota" | "zones" | "regions" | "instance_type"
    where: str  # a site name, or "site/GPU" for quotas
    shortfall: float  # in the constraint's own unit
    unit: str  # "MW", "GPUs", "sites"
    detail: str = ""

    def __str__(self) -> str:
        amount = f"{self.shortfall:,.1f}" if self.unit == "MW" else f"{self.shortfall:,.0f}"
        text = f"needs {amount} {self.unit} more {self.kind} at {self.where}"
        return f"{text} ({self.detail})" if self.detail else text


class InfeasiblePlanError(GpufleetError):
    """No placement satisfies the constraints; ``binding`` says which ones and by how much."""

    exit_code = EXIT_BLOCKED

    def __init__(self, explanation: str, binding: list[BindingConstraint] | None = None) -> None:
        self.explanation = explanation
        self.binding: list[BindingConstraint] = list(binding or [])
        super().__init__(explanation)


@dataclass
class Issues:
    """A collector used by validators: gather every issue, then raise once."""

    source: str = ""
    items: list[Issue] = field(default_factory=list)

    def add(self, loc: str, message: str, hint: str = "") -> None:
        self.items.append(Issue(loc, message, hint))

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(self.items, source=self.source)

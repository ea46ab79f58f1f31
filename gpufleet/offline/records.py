"""What an offline run records: every registered resource, every data-source call, the stack outputs.

Plain data with no Pulumi import: :class:`OfflineRun` and its :class:`RecordedResource` and
:class:`RecordedCall` entries, and :data:`UNKNOWN`, the mark of values a provider would compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gpufleet.names import CONFIG_NAMESPACE

UNKNOWN = "<computed>"
"""Stands for a value a provider would compute (unknown during a preview)."""
PROVIDER_TYPE_PREFIX = "pulumi:providers:"
"""Type tokens of provider resources."""


@dataclass(frozen=True)
class RecordedResource:
    """One resource the program registered, as the engine saw it.

    Attributes:
        type: the type token: a cloud resource's (``<package>:<module>:<Type>``) or a component's
            (``gpufleet:index:TrainingCluster``).
        name: the logical name.
        urn: the URN the mock engine gave it.
        inputs: the inputs as plain JSON (camelCase keys, numbers as floats, unknown values as
            :data:`UNKNOWN`). For a component resource these are its props.
        parent: URN of the parent resource (the stack's URN for top-level resources).
        provider: the explicit provider reference (``<provider urn>::<id>``), or None.
        custom: True for cloud resources and providers, False for components.
        id: the id the mock assigned ("" for components).
        ignore_changes: the ``ignore_changes`` resource option, as the engine receives it.
        protect: the ``protect`` resource option.
        dependencies: URNs the resource depends on (explicit ``depends_on`` and input references).
        outputs: what the engine keeps as the resource's outputs: a custom resource's state as the
            (mock) provider returned it, a component's ``register_outputs`` values; None when there
            are none (a component that registered no outputs).
        computed: top-level output keys the provider computed (not an input, or changed from it):
            unknown during a real preview, with the resource id.
    """

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str | None
    provider: str | None
    custom: bool
    id: str
    ignore_changes: tuple[str, ...] = ()
    protect: bool = False
    dependencies: tuple[str, ...] = ()
    outputs: dict[str, Any] | None = None
    computed: tuple[str, ...] = ()

    @property
    def is_component(self) -> bool:
        return not self.custom

    @property
    def is_provider(self) -> bool:
        return self.type.startswith(PROVIDER_TYPE_PREFIX)


@dataclass(frozen=True)
class RecordedCall:
    """One data-source call (invoke) the program made, and the mock's answer."""

    token: str
    args: dict[str, Any]
    result: dict[str, Any]


@dataclass
class OfflineRun:
    """The outcome of one offline run of the program.

    Attributes:
        stack: the stack name (from the file name ``Pulumi.<stack>.yaml``).
        resources: every registered resource, sorted by URN (the stack resource excluded).
        outputs: the stack outputs, resolved to plain values.
        seconds: wall-clock time of the program run (config parsing excluded).
        project: the project name the URNs carry.
        preview: whether the run was a preview (``pulumi preview``) or an update (``pulumi up``).
        calls: the data-source calls the program made, in order.
        notes: things the reader must know about this run (e.g. a placeholder SSH key was used).
        error: the exception the program raised, when run with ``check=False``.
    """

    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    seconds: float
    project: str = CONFIG_NAMESPACE
    preview: bool = True
    calls: list[RecordedCall] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def stack_urn(self) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::pulumi:pulumi:Stack::{self.project}-{self.stack}"

    def of_type(self, type_token: str) -> list[RecordedResource]:
        """Resources of one type token, in URN order."""
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> RecordedResource:
        """The resource with this logical name (raises KeyError when absent or ambiguous)."""
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}")
        return found[0]

    def children(self, parent: RecordedResource | str) -> list[RecordedResource]:
        """Direct children of a resource (or of a URN)."""
        urn = parent if isinstance(parent, str) else parent.urn
        return [r for r in self.resources if r.parent == urn]

    def descendants(self, parent: RecordedResource | str) -> list[RecordedResource]:
        """Children, grandchildren, ... of a resource, in URN order."""
        urn = parent if isinstance(parent, str) else parent.urn
        out: list[RecordedResource] = []
        frontier = [urn]
        while frontier:
            kids = [r for r in self.resources if r.parent in frontier]
            out += kids
            frontier = [r.urn for r in kids]
        return sorted(out, key=lambda r: r.urn)

    def inputs_by_urn(self) -> dict[str, dict[str, Any]]:
        """URN → inputs: what two runs must agree on to be deterministic."""
        return {r.urn: r.inputs for r in self.resources}

    def counts_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            counts[r.type] = counts.get(r.type, 0) + 1
        return dict(sorted(counts.items()))


__all__ = ["PROVIDER_TYPE_PREFIX", "UNKNOWN", "OfflineRun", "RecordedCall", "RecordedResource"]

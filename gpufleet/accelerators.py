"""Accelerator kinds and TPU slice shapes: what differs when the accelerator is a TPU or a Trainium chip.

Pure: no I/O beyond the shipped catalog, no Pulumi. The catalog (:mod:`gpufleet.catalog`) holds the
facts (each chip's ``kind``, the TPU slice shapes of ``tpu_topologies.csv``); this module answers
the questions sizing, the plan and the CLI ask of them:

* which shape a training run rounds up to: the smallest tabled slice whose chips cover what the
  deadline needs (:func:`smallest_slice`), or, for a run that declares ``slices``, the smallest
  shape that covers its share per slice (multi-slice, over the data-centre network);
* which replica sizes an inference service may use on TPUs: the chips of the single-host slices
  that fit one host (:func:`replica_sizes`), since Google serves TPU inference on single-host slices;
* the spec's ``accelerator:`` key, the same field as ``gpu:`` (:func:`accelerator_alias`);
* which VM type a TPU training run's slices run on (:func:`tpu_training_shapes`), and what a plan
  says of a TPU inference pool, a fixed number of TPU VMs (:data:`TPU_FIXED_NOTE`).

GPUs and Trainium chips round to whole nodes as before: only TPUs have slice shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gpufleet.catalog import KINDS, Catalog, InstanceType, Topology
from gpufleet.errors import Issue, SpecError

__all__ = [
    "KINDS",
    "TPU_FIXED_NOTE",
    "accelerator_alias",
    "replica_sizes",
    "shape_of",
    "slice_for_chips",
    "smallest_slice",
    "tpu_training_shapes",
]


def accelerator_alias(data: Any) -> Any:
    """A workload mapping with ``accelerator:`` read as ``gpu:`` (the same field under either name).

    Raises:
        ValueError: both keys are given (pydantic reports it at the workload's path).
    """
    if not isinstance(data, dict) or "accelerator" not in data:
        return data
    if "gpu" in data:
        raise ValueError("give the accelerator as `gpu:` or `accelerator:`, not both (they are the same field)")
    renamed = {("gpu" if k == "accelerator" else k): v for k, v in data.items()}
    return renamed


def smallest_slice(chips_needed: float, shapes: Sequence[Topology], slices: int = 1, *,
                   loc: str = "slices") -> Topology:
    """The smallest shape whose chips, times ``slices``, cover ``chips_needed``.

    Args:
        chips_needed: chips the run needs (fractional: before rounding).
        shapes: one TPU generation's slice shapes, smallest first.
        slices: slices the run declares (1: a single slice; more: multi-slice over DCN).
        loc: the field an error names.

    Raises:
        SpecError: no tabled shape is large enough, naming the largest and how many slices would do.
    """
    per_slice = chips_needed / slices
    for shape in shapes:
        if shape.chips >= round(per_slice, 9):
            return shape
    largest = shapes[-1]
    more = -(-int(round(chips_needed, 9)) // largest.chips)
    raise SpecError(Issue(loc, f"{chips_needed:,.0f} chips of {largest.accelerator} need more than "
                               f"{slices} slice(s) of its largest shape {largest.topology} "
                               f"({largest.chips:,} chips)",
                          f"slices: {more} (a multi-slice run over the data-centre network), "
                          "a later deadline_days, or fewer tokens"))


def slice_for_chips(chips: int, shapes: Sequence[Topology], *, loc: str = "nodes") -> Topology:
    """The shape of exactly ``chips`` chips (a pinned size must be a slice), or a SpecError listing them."""
    for shape in shapes:
        if shape.chips == chips:
            return shape
    listing = ", ".join(f"{s.topology} ({s.chips})" for s in shapes)
    raise SpecError(Issue(loc, f"{chips} chips is not a {shapes[0].accelerator} slice shape",
                          f"a node count giving one of: {listing}"))


def shape_of(catalog: Catalog, gpu: str, chips: int) -> Topology | None:
    """The single-host shape of ``chips`` chips of TPU ``gpu``, or None (not a TPU, or no such shape)."""
    return next((s for s in catalog.topologies.get(gpu, ()) if s.chips == chips and s.single_host), None)


def replica_sizes(catalog: Catalog, gpu: str, host: InstanceType) -> list[int] | None:
    """Chips one TPU inference replica may span on ``host``: the single-host shapes that fit it.

    None for a GPU or Trainium chip (their replicas size by powers of two and whole nodes).
    """
    shapes = catalog.topologies.get(gpu)
    if not shapes:
        return None
    return [s.chips for s in shapes if s.single_host and s.chips <= host.gpus]


TPU_FIXED_NOTE = ("{nodes} TPU VM(s) of {accelerator_type} ({topology}), a fixed size: Cloud TPU VMs have no "
                  "autoscaled form outside GKE, so the pool runs at its maximum and min_nodes equals nodes")


def tpu_training_shapes(catalog: Catalog, gpu: str, host: InstanceType, loc: str) -> tuple[Topology, ...]:
    """A TPU's slice shapes for a training run on ``host`` (empty for a GPU or Trainium chip).

    Raises:
        SpecError: ``host`` is not the VM type its multi-host slices run on.
    """
    shapes = catalog.topologies.get(gpu, ())
    if shapes and host.instance_type != shapes[-1].host_type:
        raise SpecError(Issue(loc, f"{gpu} training slices run on {shapes[-1].host_type} VMs, not {host.instance_type}",
                              f"instance_types: [{shapes[-1].host_type}], or leave instance_types out"))
    return shapes

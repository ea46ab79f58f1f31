"""``gpufleet size``: the sizing formulas on their own, for a quick answer without a stack.

``--gpu`` and ``--accelerator`` are one flag: a GPU model, a TPU chip (v5e, v5p, v6e) or a Trainium
chip; an error names the flag as the user typed it. For a TPU or Trainium chip the JSON adds ``chips``
and ``topology`` to the GPU keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
from rich.table import Table

from gpufleet.accelerators import replica_sizes, shape_of
from gpufleet.catalog import GpuModel, load_catalog
from gpufleet.cli._output import console, fmt_num, fmt_sci, print_json
from gpufleet.cli._params import like
from gpufleet.errors import Issue, SpecError
from gpufleet.sizing import BYTES_PER_DTYPE, fit_memory, size_training, training_flops
from gpufleet.spec import InferenceDemand, ModelShape, TrainingDemand, TrainingSpec

# Each flag is a spec field: same type, same bounds, same refusal of NaN and infinities.
PARAMS = like(TrainingDemand, "params")
FLAGS = ("--gpu", "--accelerator")
_ARGS = "gpufleet.size.args"
ACCELERATOR_HELP = ("GPU model (H100, H200, B200, ...), TPU chip (v5e, v5p, v6e) or Trainium chip "
                    "(trainium1, trainium2); --accelerator is the same flag.")


class _KeepsArgs(click.Command):
    """A command that keeps the arguments it was given, so an error can name a flag as it was typed."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGS] = tuple(args)
        return super().parse_args(ctx, args)


def _typed_flag(names: Sequence[str] = FLAGS) -> str:
    """Which of one option's names the user typed (the last one counts, as click keeps the last value)."""
    args: Sequence[Any] = click.get_current_context().meta.get(_ARGS, ())
    typed = [a for a in args if isinstance(a, str) and any(a == n or a.startswith(n + "=") for n in names)]
    return typed[-1].split("=", 1)[0] if typed else names[0]


def _gpu(name: str, flag: str) -> tuple[GpuModel, int]:
    """The GPU model and the GPUs per node of its largest instance in the catalog."""
    catalog = load_catalog()
    gpu = catalog.gpu(name, loc=flag)
    rows = catalog.instances_with_gpu(name)
    gpus_per_node = max((r.gpus for r in rows), default=8)
    return gpu, gpus_per_node


@click.group()
def size() -> None:
    """Size one training run or one inference replica from the formulas, without a stack."""


@size.command("training", cls=_KeepsArgs)
@click.option("--params", type=PARAMS, required=True, help="Total model parameters N (e.g. 7e10).")
@click.option("--active-params", type=PARAMS,
              help="Parameters active per token (mixture-of-experts); default: --params.")
@click.option("--tokens", type=like(TrainingDemand, "tokens"), required=True, help="Training tokens D.")
@click.option("--gpu", "--accelerator", "gpu_name", required=True, help=ACCELERATOR_HELP)
@click.option("--slices", type=like(TrainingSpec, "slices"), default=1, show_default=True,
              help="TPU: slices of one shape over the data-centre network (multi-slice).")
@click.option("--days", type=like(TrainingDemand, "deadline_days"), required=True,
              help="Deadline in days of wall-clock time.")
@click.option("--mfu", type=like(TrainingDemand, "mfu"), required=True,
              help="Assumed model FLOPs utilisation, in (0, 1].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: flops, gpus, nodes, gpu_hours, days_at_rounded_size "
              "(TPU, Trainium: also chips, topology).")
def size_training_cmd(params: float, active_params: float | None, tokens: float, gpu_name: str, slices: int,
                      days: float, mfu: float, as_json: bool) -> None:
    """GPUs and nodes for a training run: C = 6 · N_active · D FLOPs, finished by the deadline.

    Rounds up to whole nodes of the GPU's largest (8-GPU) instance in the catalog; a TPU rounds up to
    the smallest slice shape (per slice) on the VMs its multi-host slices run on.
    """
    if active_params is not None and active_params > params:
        raise SpecError(Issue("--active-params", f"{active_params:g} exceeds --params {params:g}",
                              "active parameters <= total parameters"))
    flag = _typed_flag()
    gpu, per_node = _gpu(gpu_name, flag)
    catalog = load_catalog()
    host = catalog.training_instance(gpu_name)
    shapes = catalog.topologies.get(gpu_name, ())
    if shapes and host is not None:
        per_node = host.gpus  # a TPU slice grows by the VMs of its multi-host shapes
    try:
        result = size_training(flops=training_flops(params, tokens, active_params), gpu=gpu,
                               gpus_per_node=per_node, deadline_days=days, mfu=mfu, shapes=shapes, slices=slices)
    except SpecError as exc:  # the formula names its inputs; say them as the flags that carry them
        flags = {"mfu": "--mfu", "deadline_days": "--days", "gpu": flag, "slices": "--slices"}
        raise SpecError([Issue(flags.get(i.loc, i.loc), i.message, i.hint) for i in exc.issues]) from None
    if as_json:
        print_json(result.contract())
        return
    unit = "GPUs" if gpu.kind == "gpu" else "chips"
    table = Table(title=f"Training run on {gpu_name} ({per_node} {unit} per node)", show_header=False)
    table.add_row("compute", f"{fmt_sci(result.flops)} FLOPs")
    table.add_row(f"{unit} (exact)", fmt_num(result.gpus_exact, 1))
    if result.topology is not None:
        table.add_row("slice", f"{result.slices} x {result.topology}")
    table.add_row("nodes", fmt_num(result.nodes))
    table.add_row(unit, fmt_num(result.gpus))
    table.add_row("GPU-hours" if gpu.kind == "gpu" else "chip-hours", fmt_num(result.gpu_hours))
    table.add_row("days at that size", f"{result.days_at_rounded_size:.2f} (deadline {days:g})")
    console().print(table)


@size.command("inference", cls=_KeepsArgs)
@click.option("--params", type=like(ModelShape, "params"), required=True, help="Model parameters.")
@click.option("--layers", type=like(ModelShape, "layers"), required=True, help="Transformer layers.")
@click.option("--kv-heads", type=like(ModelShape, "kv_heads"), required=True, help="Key/value heads (GQA groups).")
@click.option("--head-dim", type=like(ModelShape, "head_dim"), required=True, help="Dimension of one attention head.")
@click.option("--dtype", type=click.Choice(sorted(BYTES_PER_DTYPE)), required=True,
              help="Dtype of weights and KV cache.")
@click.option("--context-tokens", type=like(InferenceDemand, "context_tokens"), required=True,
              help="Context length per sequence.")
@click.option("--concurrency", type=like(InferenceDemand, "concurrency"), required=True,
              help="Concurrent sequences per replica.")
@click.option("--gpu", "--accelerator", "gpu_name", required=True, help=ACCELERATOR_HELP)
@click.option("--reserved-fraction", type=like(InferenceDemand, "memory_reserved_fraction"),
              default=InferenceDemand.model_fields["memory_reserved_fraction"].default,
              show_default=True, help="Share of each GPU's memory kept for the runtime.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: weights_gb, kv_cache_gb, gpus_per_replica "
              "(TPU, Trainium: also chips, topology).")
def size_inference_cmd(params: float, layers: int, kv_heads: int, head_dim: int, dtype: str, context_tokens: int,
                       concurrency: int, gpu_name: str, reserved_fraction: float, as_json: bool) -> None:
    """GPUs one replica needs to hold the weights and the KV cache of its concurrent sequences.

    On a TPU a replica is one single-host slice, tensor-parallel across its chips.
    """
    gpu, per_node = _gpu(gpu_name, _typed_flag())
    catalog = load_catalog()
    host = max(catalog.instances_with_gpu(gpu_name), key=lambda r: r.gpus, default=None)
    sizes = replica_sizes(catalog, gpu_name, host) if host is not None else None
    fit = fit_memory(params=params, layers=layers, kv_heads=kv_heads, head_dim=head_dim, dtype=dtype,
                     context_tokens=context_tokens, concurrency=concurrency,
                     gpu_memory_gib=gpu.memory_gib, gpus_per_node=per_node,
                     reserved_fraction=reserved_fraction, sizes=sizes)
    if not fit.fits:
        where = f"any single-host slice of {gpu_name} ({', '.join(map(str, sizes))} chips)" if sizes else (
            f"any replica size of {gpu_name}")
        raise SpecError(Issue("--concurrency", f"{fit.required_gb:,.0f} GB does not fit {where}",
                              "fewer sequences, a shorter context or a smaller dtype"))
    shape = shape_of(catalog, gpu_name, fit.gpus_per_replica)
    if as_json:
        extra = {} if gpu.kind == "gpu" else {"chips": fit.gpus_per_replica, "topology": shape and shape.topology}
        print_json({**fit.contract(), **extra})
        return
    table = Table(title=f"One replica on {gpu_name}", show_header=False)
    table.add_row("weights", f"{fit.weights_gb:,.1f} GB")
    table.add_row("KV cache", f"{fit.kv_cache_gb:,.1f} GB")
    table.add_row("usable per GPU", f"{fit.usable_gb_per_gpu:,.1f} GB")
    table.add_row("GPUs per replica", str(fit.gpus_per_replica))
    console().print(table)

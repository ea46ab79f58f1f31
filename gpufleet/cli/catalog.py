"""``gpufleet catalog``: the instance catalog (GPU, TPU and Trainium hosts), with the source of every row."""

from __future__ import annotations

from dataclasses import asdict

import click
from rich.table import Table

from gpufleet.catalog import CLOUDS, KINDS, load_catalog
from gpufleet.cli._output import console, fmt_num, print_json


@click.command()
@click.option("--cloud", type=click.Choice(CLOUDS), help="Only this cloud's instance types.")
@click.option("--gpu", "gpu_name", help="Only instance types with this GPU model or chip (H100, v5p, trainium2, ...).")
@click.option("--accelerator", "kind", type=click.Choice(KINDS),
              help="Only instance types with this kind of accelerator: NVIDIA GPUs, Cloud TPU chips or Trainium chips.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows (with sources) instead of a table.")
def catalog(cloud: str | None, gpu_name: str | None, kind: str | None, as_json: bool) -> None:
    """List the instance catalog: GPUs or chips, memory, fabric, node power, and where each figure comes from.

    GPUs and chips are counted alike (a TPU host's "GPUs" are its TPU chips); TPU slice shapes are in
    ``gpufleet/catalog/data/tpu_topologies.csv`` (docs/accelerators.md).
    """
    cat = load_catalog()
    if gpu_name is not None:
        cat.gpu(gpu_name, loc="--gpu")
    rows = [r for r in cat.for_cloud(cloud) if (gpu_name is None or r.gpu == gpu_name)
            and (kind is None or cat.kind(r.gpu) == kind)]
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    table = Table(title="gpufleet instance catalog")
    for col in ("instance type", "cloud", "GPU", "GPUs", "GiB/GPU", "fabric", "ifaces", "Gbps", "kW/node"):
        table.add_column(col, justify="right" if col in {"GPUs", "GiB/GPU", "ifaces", "Gbps", "kW/node"} else "left")
    for r in rows:
        table.add_row(r.instance_type, r.cloud, r.gpu, str(r.gpus), fmt_num(r.gpu_memory_gib, 1), r.fabric,
                      str(r.fabric_interfaces), fmt_num(r.fabric_gbps), fmt_num(r.node_power_kw, 1))
    out = console()
    out.print(table)
    out.print("Sources: `gpufleet catalog --json` carries each row's source; node power is an estimate "
              "unless a site declares node_power_kw (see docs/catalog.md).")

"""Cloud TPU on GCP as gpufleet knows it: the TPU API's names, software versions and refusals.

Pure: no Pulumi, no SDK. ``components/gcp_tpu.py`` builds from these facts, the GCP profile runs the
checks, the pack's GCP reader reads the resources by these type tokens.

Sources (read 2026-12):

* A slice is one TPU node (``tpu.googleapis.com`` v2 ``Node``; Pulumi ``gcp.tpu.V2Vm``) whose
  ``acceleratorConfig`` is a type and a topology in chips
  (https://cloud.google.com/tpu/docs/reference/rest/v2/AcceleratorConfig: ``V5LITE_POD``, ``V5P``,
  ``V6E``); a multi-host slice is still one node, with one VM per host.
* The software version each generation boots (https://cloud.google.com/tpu/docs/runtimes:
  v6e ``v2-alpha-tpuv6e``, v5p ``v2-alpha-tpuv5``, v5e ``v2-alpha-tpuv5-lite``).
* Queued resources (``gcp.tpu.V2QueuedResource``) request TPUs that are provisioned when capacity
  is available (https://cloud.google.com/tpu/docs/queued-resources): best-effort, not a reservation.
* TPU VMs have no managed instance group or autoscaler outside GKE: a TPU inference pool is a fixed
  number of single-host TPU VMs (https://cloud.google.com/tpu/docs/v6e: v6e-8 "optimized for
  inference"; autoscaled TPU serving is GKE's node pools).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpufleet.errors import Issue

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType
    from gpufleet.plan import PoolPlan

V2VM = "gcp:tpu/v2Vm:V2Vm"
QUEUED_RESOURCE = "gcp:tpu/v2QueuedResource:V2QueuedResource"

ACCELERATOR_CONFIG_TYPE: dict[str, str] = {"v5e": "V5LITE_POD", "v5p": "V5P", "v6e": "V6E"}
"""The TPU API's ``AcceleratorConfig.Type`` of each generation."""
RUNTIME_VERSION: dict[str, str] = {"v5e": "v2-alpha-tpuv5-lite", "v5p": "v2-alpha-tpuv5", "v6e": "v2-alpha-tpuv6e"}
"""The TPU software version each generation's VMs boot (PyTorch and JAX)."""
CAPACITY_TYPES = frozenset({"on_demand", "reservation", "flex_start"})
"""Capacity a TPU slice may use: on demand, the project's TPU reservation (``scheduling_config.reserved``),
or a queued resource (flex-start: best-effort)."""


def is_tpu(row: InstanceType) -> bool:
    """True for a Cloud TPU VM type (its fabric is the chips' ICI)."""
    return row.fabric == "ici"


def slice_name(pool_name: str, index: int, count: int) -> str:
    """The TPU node of slice ``index`` of ``count`` (the pool's name alone when there is one slice)."""
    return pool_name if count == 1 else f"{pool_name}-s{index}"


def check_pool_tpu_slice(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A TPU pool is whole slices of one shape, on capacity a TPU node can use.

    A training pool has its slice shape and its nodes are ``slices`` slices of it (the plan's
    sizing guarantees it; a hand-built plan may not). Multi-slice runs are declared (``slices``)."""
    if not is_tpu(row):
        return []
    if pool.topology is None:
        return [Issue(f"{loc}.gpu", f"TPU pool {pool.name} has no slice topology", "plan it with gpufleet")]
    if pool.role == "training" and pool.capacity_type not in CAPACITY_TYPES:
        return [Issue(f"{loc}.capacity.type", f"a {row.gpu} slice cannot use capacity type {pool.capacity_type!r}",
                      ", ".join(sorted(CAPACITY_TYPES)))]
    if pool.role == "training" and pool.nodes % pool.slices:
        return [Issue(f"{loc}.slices", f"{pool.nodes} {row.instance_type} VMs do not make {pool.slices} equal slices",
                      "plan it with gpufleet")]
    return []

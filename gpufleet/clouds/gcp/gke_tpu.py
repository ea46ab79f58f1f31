"""Cloud TPU slices as GKE TPU node pools: what GKE builds and refuses for a pool whose chips are TPUs.

Pure: no Pulumi, no SDK. The GKE backend (``components/k8s/gke_tpu.py``) builds what this module
describes, the GCP reader reads it back (:mod:`gpufleet.clouds.gcp.gke_tpu_readers`), and the GCP
profile runs the named checks here before anything is built (``gpufleet plan``, ``preflight`` and
``preview`` alike). Every fact names the Google page or Cluster Toolkit file it comes from (read 2026-12):

* A TPU slice on GKE is a *TPU slice node pool*: each node is one TPU VM of a TPU machine type
  (``ct5p-hightpu-4t``, ``ct5lp-hightpu-4t`` / ``-8t``, ``ct6e-standard-4t`` / ``-8t``), no
  ``guest_accelerator`` and no NVIDIA driver. A *multi-host* slice is one node pool whose node count is
  the slice's hosts, its shape ``placement_policy {type: COMPACT, tpu_topology: "4x4x4"}``; a
  *single-host* slice is one VM whose machine type holds the whole shape
  (https://cloud.google.com/kubernetes-engine/docs/concepts/plan-tpus, "Choose the TPU topology";
  https://cloud.google.com/kubernetes-engine/docs/concepts/tpus, "Types of TPU slice node pools";
  Cluster Toolkit ``modules/compute/gke-node-pool/main.tf``: ``tpu_topology`` set only for TPU
  machine types, ``examples/gke-tpu-v6e``).
* A multi-host slice node pool is atomic and immutable: GKE creates or recreates all its VMs as one
  unit, scales it from 0 to the whole slice and back, never node by node, and no node can be added to
  it; a larger or second slice is another node pool
  (https://cloud.google.com/kubernetes-engine/docs/concepts/tpus, "Atomicity", "Multi-host TPU slice
  node pools"). So a training pool gets a fixed ``node_count`` of its hosts, or with queued
  provisioning an autoscaler from 0 to exactly its hosts, and only single-host slices serve
  (a Deployment's replica on one node, the node pool autoscaled node by node).
* Multi-slice is one multi-host node pool per slice, all of one TPU type, size and topology; a
  single-host node pool cannot take part (e.g. ``ct5lp-hightpu-4t`` with ``2x2``)
  (https://cloud.google.com/kubernetes-engine/docs/how-to/tpu-multislice, "Multislice availability in
  GKE"; Cluster Toolkit ``gke-node-pool`` ``num_slices``: one node pool per slice).
* Compact placement holds only in a single-zone node pool (Cluster Toolkit ``gke-node-pool``
  precondition "Compact placement is only available for node pools operating in a single zone"), so a
  multi-host slice node pool is in one zone; single-host serving pools may list several zones
  (``--node-locations``, https://cloud.google.com/kubernetes-engine/docs/how-to/tpus).
* Queued provisioning (flex-start) on TPUs keeps the COMPACT ``tpu_topology`` (Cluster Toolkit
  precondition: "placement_policy cannot be COMPACT when enable_queued_provisioning is true, unless
  using TPUs"), with ``reservation_affinity: NO_RESERVATION``, total minimum 0, no auto-repair
  (``examples/gke-consumption-options/dws-flex-start-queued-provisioning/gke-tpu-v6e``: maximum = the
  slice's hosts). A reserved slice consumes its reservation by name
  (``reservation_affinity {SPECIFIC_RESERVATION}``, ``examples/gke-tpu-v6e``). Spot TPU node pools
  exist on GKE, but gpufleet builds no spot node pools on Kubernetes yet (``gpufleet.checks`` refuses).
* TPU nodes carry the ``google.com/tpu=present:NoSchedule`` taint and the node labels
  ``cloud.google.com/gke-tpu-accelerator`` (per generation: ``tpu-v5-lite-podslice``,
  ``tpu-v5p-slice``, ``tpu-v6e-slice``) and ``cloud.google.com/gke-tpu-topology`` that workloads select
  on (Cluster Toolkit ``modules/internal/tpu-definition/main.tf``). ``ct6e`` boot disks are Hyperdisk
  (``examples/gke-tpu-v6e``: ``disk_type: hyperdisk-balanced``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpufleet.clouds.base import PoolCheck
from gpufleet.clouds.gcp.gke import node_pool_name, on_kubernetes
from gpufleet.clouds.gcp.tpu import is_tpu, slice_name
from gpufleet.errors import Issue

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType, Topology
    from gpufleet.plan import PoolPlan

ACCELERATOR_LABELS: dict[str, str] = {"v5e": "tpu-v5-lite-podslice", "v5p": "tpu-v5p-slice", "v6e": "tpu-v6e-slice"}
"""The ``cloud.google.com/gke-tpu-accelerator`` node label of each TPU generation."""
ACCELERATOR_LABEL = "cloud.google.com/gke-tpu-accelerator"
TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
TPU_TAINT = ("google.com/tpu", "present", "NO_SCHEDULE")
"""The taint of TPU nodes (key, value, effect): only pods that tolerate it land there."""
HYPERDISK_TPU_FAMILIES = frozenset({"ct6e"})
"""TPU machine families whose boot disk is Hyperdisk Balanced."""
PLACEMENT_COMPACT = "COMPACT"


def on_gke(pool: PoolPlan) -> bool:
    """True for a TPU pool on a GKE site (its node pools are TPU slice node pools)."""
    return on_kubernetes(pool) and pool.accelerator_kind == "tpu"


def shape(pool: PoolPlan) -> Topology | None:
    """The catalog shape of the pool's slice (training) or of each node's single-host slice (inference)."""
    from gpufleet.catalog import load_catalog  # the catalog reads the cloud registry this module is part of

    return load_catalog().slice_shape(pool.gpu, pool.topology)


def hosts_per_slice(pool: PoolPlan) -> int:
    """Nodes one slice node pool holds: the pool's nodes over its slices."""
    return pool.nodes // max(pool.slices, 1)


def multi_host(pool: PoolPlan) -> bool:
    """True when each slice of the pool spans more than one TPU VM (a multi-host slice node pool)."""
    found = shape(pool)
    return found is not None and not found.single_host


def slice_pools(pool: PoolPlan) -> list[str]:
    """The GKE node pool names of a training pool's slices, one per slice (``<pool>-s<i>`` when several)."""
    return [node_pool_name(slice_name(pool.name, i, pool.slices)) for i in range(max(pool.slices, 1))]


def node_labels(pool: PoolPlan) -> dict[str, str]:
    """The TPU node labels a pod's ``nodeSelector`` names its slice by: the generation's accelerator label
    and the slice topology (a training slice's, or each serving node's single-host one)."""
    labels = {TOPOLOGY_LABEL: str(pool.topology)}
    if pool.gpu in ACCELERATOR_LABELS:
        labels[ACCELERATOR_LABEL] = ACCELERATOR_LABELS[pool.gpu]
    return labels


def boot_disk_type(machine_type: str) -> str:
    """The boot disk a TPU node of ``machine_type`` takes."""
    return "hyperdisk-balanced" if machine_type.split("-", 1)[0] in HYPERDISK_TPU_FAMILIES else "pd-balanced"


# --- named checks ----------------------------------------------------------------------------------------


def check_pool_gke_tpu_machine_type(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A GKE TPU node pool's machine type is the VM its slice shape runs on, of a generation GKE labels."""
    if not on_gke(pool) or not is_tpu(row):
        return []
    if row.gpu not in ACCELERATOR_LABELS:
        return [Issue(f"{loc}.gpu", f"gpufleet knows no GKE TPU accelerator label for {row.gpu}",
                      ", ".join(sorted(ACCELERATOR_LABELS)))]
    found = shape(pool)
    if found is None:
        return [Issue(f"{loc}.gpu", f"TPU pool {pool.name}: {pool.topology or 'no'} topology is not a tabled "
                      f"{row.gpu} slice shape", "plan it with gpufleet")]
    if found.host_type == row.instance_type and (pool.role != "training" or found.vms * pool.slices == pool.nodes):
        return []
    hint = (f"instance_types: [{found.host_type}]" if pool.role != "training" else
            f"plan it with gpufleet; a training run's slices run on {row.instance_type} nodes, so a shape of them "
            "(more chips per slice: an earlier deadline_days), or platform.kind: vm")
    return [Issue(f"{loc}.instance_types", f"TPU pool {pool.name}: a {found.topology} {row.gpu} slice runs on "
                  f"{found.vms} {found.host_type} node(s) per slice, not {hosts_per_slice(pool)} {row.instance_type}",
                  hint)]


def check_pool_gke_tpu_zone(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A TPU training slice node pool sits in one zone (its COMPACT placement holds only there)."""
    if not on_gke(pool) or pool.role != "training" or len(pool.zones) <= 1:
        return []
    return [Issue(f"{loc}.zone", f"TPU slice node pool {pool.name} would span zones {', '.join(pool.zones)}; a "
                  "GKE TPU slice node pool with COMPACT placement is in a single zone", "zone: <one zone of the site>")]


def check_pool_gke_tpu_multislice(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """GKE multi-slice takes multi-host slice node pools only, one per slice."""
    if not on_gke(pool) or pool.role != "training" or pool.slices <= 1 or multi_host(pool):
        return []
    return [Issue(f"{loc}.slices", f"{pool.slices} slices of {pool.topology} ({row.gpu}): GKE runs multi-slice "
                  f"only over multi-host TPU slice node pools, and a {pool.topology} slice is single-host",
                  "slices: 1 with a larger shape, or enough chips per slice for a multi-host shape")]


def check_pool_gke_tpu_serving(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """A TPU inference node pool holds single-host slices: GKE scales a multi-host slice only as a whole,
    while the service's Deployment and the node pool's autoscaler add one node at a time."""
    if not on_gke(pool) or pool.role != "inference" or not multi_host(pool):
        return []
    return [Issue(f"{loc}.model", f"TPU inference pool {pool.name} would serve on {pool.topology} multi-host slices, "
                  "which GKE scales only whole (0 or every host), never node by node",
                  "a single-host shape (a smaller model, context or concurrency), or platform.kind: vm")]


POOL_CHECKS: tuple[PoolCheck, ...] = (check_pool_gke_tpu_machine_type, check_pool_gke_tpu_zone, check_pool_gke_tpu_multislice,
               check_pool_gke_tpu_serving)
"""The GKE TPU checks the GCP profile runs (each returns nothing for a GPU pool or a pool on VMs)."""

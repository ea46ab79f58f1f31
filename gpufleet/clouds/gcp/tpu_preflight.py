"""GCP preflight reads for Cloud TPU pools, through google-cloud-tpu (``tpu_v2``, REST transport).

Calls:

* ``TpuClient.list_accelerator_types(parent=projects/P/locations/ZONE)`` per zone asked (retried
  like the Compute reads): the TPU accelerator types the zone offers (``v5p-8``, ``v6e-8``, ...). A TPU
  VM type is offered in a zone that lists an accelerator type of its generation's slices that run on
  it (tpu_topologies.csv), and a pool's own slice (``v5p-128``) must be listed there too; a location
  the TPU API does not know (404) offers none.
* TPU quota and TPU reservations: :mod:`gpufleet.clouds.gcp.tpu_quota`.
* No catalog comparison: the TPU API states no chips or vCPUs per VM.

Errors are google-api-core's, mapped by :func:`gpufleet.clouds.gcp.preflight.classify`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from gpufleet.catalog import load_catalog
from gpufleet.clouds.gcp.tpu import is_tpu
from gpufleet.plan import PoolPlan
from gpufleet.preflight import reads
from gpufleet.spec import SiteSpec

OFFERING_CHECK = "tpu:acceleratorTypes.list"


def tpu_client(credentials: Any) -> Any:
    """A REST client of google-cloud-tpu (imported here: preflight's optional dependency)."""
    with warnings.catch_warnings():
        # google-api-core warns at import time about its own Python support schedule; not ours to act on.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core\..*")
        from google.cloud import tpu_v2

    return tpu_v2.TpuClient(credentials=credentials, transport="rest")


def tpu_generation(instance_type: str) -> str | None:
    """The TPU generation of a TPU VM type (``ct5p-hightpu-4t`` → ``v5p``), None for any other type."""
    row = load_catalog().instances.get(instance_type)
    return row.gpu if row is not None and is_tpu(row) else None


def accelerator_types_for(instance_type: str) -> set[str]:
    """The TPU API accelerator types whose slices run on ``instance_type`` VMs."""
    gen = tpu_generation(instance_type)
    shapes = load_catalog().topologies.get(gen or "", ())
    return {s.accelerator_type for s in shapes if s.host_type == instance_type} or {s.accelerator_type for s in shapes}


def pool_accelerator_type(pool: PoolPlan) -> str | None:
    """The TPU API accelerator type of one slice (training) or one VM (inference) of a TPU pool."""
    shape = load_catalog().slice_shape(tpu_generation(pool.instance_type), pool.topology)
    return shape.accelerator_type if shape is not None else None


class TpuReads:
    """The TPU reads a :class:`~gpufleet.clouds.gcp.preflight.GcpChecker` mixes in."""

    remember: Callable[..., Any]
    find: Callable[..., Any]
    _client: Callable[[str], Any]
    _call_options: Callable[[], dict[str, Any]]
    project_of: Callable[[SiteSpec], str | None]

    def zone_accelerator_types(self, project: str, zone: str) -> frozenset[str]:
        """The accelerator types ``zone`` offers (once per project and zone; none where the API has no such location)."""
        def read() -> frozenset[str]:
            found = self.find(self._client("tpu").list_accelerator_types,
                              parent=f"projects/{project}/locations/{zone}", **self._call_options())
            return frozenset(str(t.name).rsplit("/", 1)[-1] for t in found) if found is not None else frozenset()

        result: frozenset[str] = self.remember(("tpu_types", project, zone), read)
        return result

    def tpu_offering(self, site: SiteSpec, instance_type: str, zones: Sequence[str]) -> reads.Offering:
        """Zones listing an accelerator type of the VM type's slices. ``listed`` stays False: the TPU API
        states no chips or vCPUs per VM, so there is no catalog row to compare it with."""
        wanted = accelerator_types_for(instance_type)
        project = self.project_of(site) or ""
        found = frozenset(z for z in zones if wanted & self.zone_accelerator_types(project, z))
        return reads.Offering(instance_type, found, listed=False, lists_region=False)

    def tpu_slice_missing(self, site: SiteSpec, pool: PoolPlan) -> list[str]:
        """The pool's zones that list its generation but not its own slice's accelerator type."""
        wanted = pool_accelerator_type(pool)
        project = self.project_of(site) or ""
        return [z for z in pool.zones if wanted and (types := self.zone_accelerator_types(project, z))
                and accelerator_types_for(pool.instance_type) & types and wanted not in types]

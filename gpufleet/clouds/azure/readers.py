"""How the policy pack reads Azure resources: scale sets, autoscale settings, InfiniBand placement.

===================================================  ================================================
resource                                             read
===================================================  ================================================
``azure-native:compute:VirtualMachineScaleSet``      sku.capacity (nodes), sku.name, zones,
                                                     singlePlacementGroup (InfiniBand),
                                                     virtualMachineProfile.priority (``Spot``: every
                                                     VM spot, no on-demand capacity; unknown: the
                                                     on-demand capacity cannot be verified)
``azure-native:monitor:AutoscaleSetting``            profiles[].capacity.minimum / maximum (the
                                                     smallest over profiles), enabled
``azure-native:compute:VirtualMachine``              a group of one: zones, hardwareProfile.vmSize
``azure-native:containerservice:AgentPool`` (AKS)    minCount / maxCount when enableAutoScaling, else
                                                     count; vmSize, availabilityZones
===================================================  ================================================

A training cluster of several single-placement-group scale sets spans several InfiniBand islands
(Ethernet between them): a fabric problem unless its component records the run's opt-in
(``pool.allow_multiple_islands`` in its props). On AKS each agent pool of an InfiniBand size is one
island (:mod:`gpufleet.clouds.azure.aks`), and RDMA between its pods needs the NVIDIA Network Operator,
cluster software the run records it has (``pool.fabric_setup_by_workload``).

An autoscaler is paired with the group it scales by its target, a dependency, or the names gpufleet's
components give the pair (``<stem>-vmss`` / ``<stem>-autoscale``); one nothing links fails closed
(:func:`gpufleet.policy.resources.build_inventory`), never paired by name order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gpufleet.clouds.azure import aks
from gpufleet.clouds.azure.profile import AUTOSCALE_SETTINGS, SCALE_SET, VIRTUAL_MACHINE, AzureProfile
from gpufleet.policy.resources import CloudReader, NodeGroup, Pool, Resource, as_int, known, known_list, pick
from gpufleet.policy.resources import is_unknown, unknown_at

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType


SPOT_PRIORITIES = ("spot", "low")
"""Scale set priorities whose VMs Azure may evict (``Low`` is the older name of ``Spot``)."""


class AzureReader(CloudReader):
    """Reads VM scale sets (bounded by their autoscale setting) and VMs; checks single placement groups."""

    cloud = AzureProfile.name
    group_types = (SCALE_SET, aks.AGENT_POOL)
    single_node_types = (VIRTUAL_MACHINE,)
    autoscaler_types = AUTOSCALE_SETTINGS
    component_names = ("-vmss", "-autoscale")

    def node_group(self, pool: Pool, r: Resource) -> NodeGroup:
        p = r.props
        if r.type == VIRTUAL_MACHINE:
            return NodeGroup(resource=r, cloud=self.cloud, min_nodes=1, max_nodes=1, count=1,
                             zones=known_list(pick(p, "zones")),
                             instance_type=known(pick(pick(p, "hardwareProfile") or {}, "vmSize")))
        if r.type == aks.AGENT_POOL:
            count = as_int(pick(p, "count"))
            low, high = ((as_int(pick(p, "minCount")), as_int(pick(p, "maxCount")))
                         if pick(p, "enableAutoScaling") is True else (count, count))
            return NodeGroup(resource=r, cloud=self.cloud, min_nodes=low, max_nodes=high,
                             count=low if count is None else count, zones=known_list(pick(p, "availabilityZones")),
                             instance_type=known(pick(p, "vmSize")))
        sku = pick(p, "sku") or {}
        capacity = as_int(pick(sku, "capacity"))
        priority = pick(pick(p, "virtualMachineProfile") or {}, "priority")
        return NodeGroup(resource=r, cloud=self.cloud, min_nodes=capacity, max_nodes=capacity, count=capacity,
                         zones=known_list(pick(p, "zones")), instance_type=known(pick(sku, "name")),
                         spot_nodes=None if is_unknown(priority) else 0,
                         spot_group=str(priority).lower() in SPOT_PRIORITIES)

    def apply_autoscaler(self, group: NodeGroup) -> None:
        assert group.autoscaler is not None
        props = group.autoscaler.props
        mins, maxs = [], []
        for prof in (p for p in pick(props, "profiles") or [] if isinstance(p, Mapping)):
            cap = pick(prof, "capacity") or {}
            mins.append(as_int(pick(cap, "minimum")))
            maxs.append(as_int(pick(cap, "maximum")))
        # Any profile may be the active one: the smallest bounds are what is guaranteed.
        group.min_nodes = None if not mins or None in mins else min(m for m in mins if m is not None)
        group.max_nodes = None if not maxs or None in maxs else min(m for m in maxs if m is not None)
        if pick(props, "enabled") is False:
            group.min_nodes = group.max_nodes = group.count

    def fabric_problems(self, pool: Pool, row: InstanceType) -> list[str]:
        problems = []
        for g in pool.groups:
            if g.resource.type == aks.AGENT_POOL:
                continue  # one agent pool is one island; its RDMA software is checked below
            spg = pick(g.resource.props, "singlePlacementGroup")
            if unknown_at(pool.unknown, g.resource, "singlePlacementGroup"):
                continue  # unknown until apply: the rule fails closed on it
            if spg is not True:
                problems.append(f"scale set {g.name} is not a single placement group (singlePlacementGroup is "
                                f"{spg!r}; InfiniBand connects only VMs of one placement group)")
        return problems + self._island_problems(pool) + self._aks_problems(pool, row)

    @staticmethod
    def _aks_problems(pool: Pool, row: InstanceType) -> list[str]:
        """An AKS InfiniBand node pool whose RDMA software nobody installs (gpufleet installs none)."""
        gap = aks.infiniband_software_gap(row)
        recorded = pick(pool.component.props, "pool") if pool.component else None  # the component's PoolPlan
        if gap is None or not any(g.resource.type == aks.AGENT_POOL for g in pool.groups) \
                or pick(recorded or {}, "fabric_setup_by_workload") is True:
            return []
        return [f"its InfiniBand is not enabled ({gap}), and the run does not set fabric_setup_by_workload: true"]

    @staticmethod
    def _island_problems(pool: Pool) -> list[str]:
        """Several scale sets (or AKS agent pools) are several InfiniBand islands: allowed only where the
        run opted in."""
        islands = [g for g in pool.groups if g.resource.type in (SCALE_SET, aks.AGENT_POOL)]
        recorded = pick(pool.component.props, "pool") if pool.component else None  # the component's PoolPlan
        allowed = pick(recorded, "allow_multiple_islands")
        if len(islands) <= 1 or allowed is True:
            return []
        sizes = "+".join("?" if g.count is None else str(g.count) for g in islands)
        kind = "agent pools" if islands[0].resource.type == aks.AGENT_POOL else "scale sets"
        return [f"it spans {len(islands)} InfiniBand islands ({kind} {', '.join(g.name for g in islands)}: "
                f"{sizes} VMs) and traffic between islands is Ethernet, but the run does not set "
                "allow_multiple_islands: true"]


READER = AzureReader()

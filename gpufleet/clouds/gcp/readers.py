"""How the policy pack reads GCP resources: managed instance groups, autoscalers, GPU NICs, compact placement.

==================================================================  ===================================
resource                                                            read
==================================================================  ===================================
``gcp:compute/regionInstanceGroupManager`` /                        targetSize, distributionPolicyZones
``gcp:compute/instanceGroupManager``                                / zone, its instance templates
                                                                    (versions[].instanceTemplate)
``gcp:compute/regionAutoscaler`` / ``gcp:compute/autoscaler``       autoscalingPolicy.min/maxReplicas,
                                                                    mode
``gcp:compute/instanceTemplate`` / ``regionInstanceTemplate``       machineType, networkInterfaces[]
                                                                    .nicType, resourcePolicies
``gcp:compute/resourcePolicy``                                      groupPlacementPolicy.collocation
``gcp:compute/instance``                                            a group of one: zone, machineType
==================================================================  ===================================

A MIG carries no labels: its autoscaler and itself are found through their pool component.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gpufleet.clouds.gcp.profile import (
    AUTOSCALERS,
    INSTANCE,
    REGION_MIG,
    RESOURCE_POLICY,
    TEMPLATES,
    ZONE_MIG,
    GcpProfile,
    layout_for,
)
from gpufleet.policy.resources import (
    CloudReader,
    NodeGroup,
    Pool,
    Resource,
    as_int,
    known,
    known_list,
    names_resource,
    pick,
)

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType


def _machine_type(value: object) -> str | None:
    """``zones/us-central1-a/machineTypes/a3-ultragpu-8g`` or ``a3-ultragpu-8g`` → ``a3-ultragpu-8g``."""
    name = known(value)
    return name.rsplit("/", 1)[-1] if name else None


class GcpReader(CloudReader):
    """Reads managed instance groups (bounded by their autoscaler) and instances; checks GPU NICs."""

    cloud = GcpProfile.name
    group_types = (REGION_MIG, ZONE_MIG)
    single_node_types = (INSTANCE,)
    autoscaler_types = AUTOSCALERS

    def node_group(self, pool: Pool, r: Resource) -> NodeGroup:
        p = r.props
        if r.type in (ZONE_MIG, INSTANCE):
            zone = known(pick(p, "zone"))
            zones: tuple[str, ...] = (zone,) if zone else ()
        else:
            zones = known_list(pick(p, "distributionPolicyZones")) or pool.declared_zones
        if r.type == INSTANCE:
            return NodeGroup(resource=r, cloud=self.cloud, min_nodes=1, max_nodes=1, count=1, zones=zones,
                             instance_type=known(pick(p, "machineType")))
        size = as_int(pick(p, "targetSize"))
        refs = {pick(v, "instanceTemplate") for v in (pick(p, "versions") or []) if isinstance(v, Mapping)}
        refs.add(pick(p, "instanceTemplate"))
        names = {v for v in refs if known(v)}
        templates = pool.of_type(*TEMPLATES)
        linked = [t for t in templates if any(names_resource(ref, t) for ref in names)] or list(templates)
        itype = next((m for m in (_machine_type(pick(t.props, "machineType")) for t in linked) if m), None)
        return NodeGroup(resource=r, cloud=self.cloud, min_nodes=size, max_nodes=size, count=size, zones=zones,
                         instance_type=itype, templates=linked)

    def apply_autoscaler(self, group: NodeGroup) -> None:
        assert group.autoscaler is not None
        policy = pick(group.autoscaler.props, "autoscalingPolicy") or {}
        group.min_nodes = as_int(pick(policy, "minReplicas"))
        group.max_nodes = as_int(pick(policy, "maxReplicas"))
        if str(pick(policy, "mode") or "ON").upper() == "OFF":
            group.min_nodes = group.max_nodes = group.count

    def fabric_problems(self, pool: Pool, row: InstanceType) -> list[str]:
        problems: list[str] = []
        layout = layout_for(row.instance_type)
        want = layout.gpu_nics if layout is not None else row.fabric_interfaces
        compact = [p for p in pool.of_type(RESOURCE_POLICY)
                   if str(pick(pick(p.props, "groupPlacementPolicy") or {}, "collocation") or "").upper() == "COLLOCATED"]
        for g in pool.groups:
            if not g.templates:
                problems.append(f"node group {g.name} has no instance template to attach the GPU NICs")
                continue
            for t in g.templates:
                nics = [n for n in pick(t.props, "networkInterfaces") or [] if isinstance(n, Mapping)]
                if layout is not None and layout.roce:
                    have = sum(1 for n in nics if str(pick(n, "nicType") or "").upper() == layout.gpu_nic_type)
                    kind = f"{layout.gpu_nic_type} NICs"
                else:
                    host = layout.host_nics if layout is not None else 1
                    have = max(0, len(nics) - host)  # the host NICs first, the rest are GPU NICs
                    kind = "GPU NICs"
                if have < want:
                    problems.append(f"instance template {t.name} attaches {have} of the {want} {kind} "
                                    f"a {row.instance_type} has ({want - have} missing)")
                if not pick(t.props, "resourcePolicies"):
                    problems.append(f"instance template {t.name} names no compact placement policy")
            if not compact:
                problems.append("the stack creates no COLLOCATED resource policy for it")
        return problems


READER = GcpReader()

"""How the policy pack reads GCP resources: managed instance groups, autoscalers, GPU NICs, compact placement.

==================================================================  ===================================
resource                                                            read
==================================================================  ===================================
``gcp:compute/regionInstanceGroupManager`` /                        targetSize, distributionPolicyZones
``gcp:compute/instanceGroupManager``                                / zone, its instance templates
                                                                    (versions[].instanceTemplate)
``gcp:compute/regionAutoscaler`` / ``gcp:compute/autoscaler``       autoscalingPolicy.min/maxReplicas,
                                                                    mode
``gcp:compute/instanceGroupManager`` (training)                     resourcePolicies.workloadPolicy
``gcp:compute/instanceTemplate`` / ``regionInstanceTemplate``       machineType, networkInterfaces[]
                                                                    .nicType, resourcePolicies,
                                                                    reservationAffinity
``gcp:compute/resourcePolicy``                                      workloadPolicy.type,
                                                                    groupPlacementPolicy.vmCount
``gcp:compute/instance``                                            a group of one: zone, machineType
==================================================================  ===================================

A MIG carries no labels: its autoscaler and itself are found through their pool component.

A training MIG's compact placement is a HIGH_THROUGHPUT workload policy on the group, or a specific
reservation its template consumes (the reservation places its VMs); families without workload policies
need none. A COLLOCATED policy with ``vmCount``
on a MIG's template is a problem: it admits only that many VMs created at once, which a MIG does not do
(https://cloud.google.com/compute/docs/instance-groups/about-workload-policies). A GPUDirect-TCPX(O)
cluster is a problem unless its component records that the run sets the fabric's software up itself
(``pool.fabric_setup_by_workload``): gpufleet installs none of it.
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
    WORKLOAD_POLICY_FAMILIES,
    WORKLOAD_POLICY_TYPE,
    ZONE_MIG,
    GcpProfile,
    layout_for,
    machine_family,
    tcpx_setup_gap,
)
from gpufleet.policy.resources import CloudReader, NodeGroup, Pool, Resource, as_int, is_unknown, known
from gpufleet.policy.resources import known_list, names_resource, pick, unknown_at

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
        for g in pool.groups:
            if not g.templates:
                problems.append(f"node group {g.name} has no instance template to attach the GPU NICs")
                continue
            for t in g.templates:
                # a NIC list unknown until apply: not counted, the rule fails closed on it
                nics_unknown = unknown_at(pool.unknown, t, "networkInterfaces.*.nicType" if layout is not None
                                          and layout.roce else "networkInterfaces")
                nics = [n for n in pick(t.props, "networkInterfaces") or [] if isinstance(n, Mapping)]
                if layout is not None and layout.roce:
                    have = sum(1 for n in nics if str(pick(n, "nicType") or "").upper() == layout.gpu_nic_type)
                    kind = f"{layout.gpu_nic_type} NICs"
                else:
                    host = layout.host_nics if layout is not None else 1
                    have = max(0, len(nics) - host)  # the host NICs first, the rest are GPU NICs
                    kind = "GPU NICs"
                if have < want and not nics_unknown:
                    problems.append(f"instance template {t.name} attaches {have} of the {want} {kind} "
                                    f"a {row.instance_type} has ({want - have} missing)")
            problems += _placement_problems(pool, g, row)
        return problems + _setup_problems(pool, row)


def _reserved(template: Resource) -> bool:
    """True when the template consumes a specific reservation (which places its VMs itself)."""
    affinity = pick(template.props, "reservationAffinity") or {}
    return str(pick(affinity, "type") or "").upper() in {"SPECIFIC_RESERVATION", "SPECIFIC"}


def _policies(pool: Pool, ref: object, owner: Resource, what: str) -> list[Resource]:
    """The pool's resource policies ``ref`` (``owner``'s property ``what``) names. While ``ref`` is
    unknown, the ones ``owner`` depends on; when it depends on none, ``ref`` cannot be verified (the
    rule fails closed on it) and all of them are returned, so no other problem is made up."""
    policies = pool.of_type(RESOURCE_POLICY)
    name = known(ref)
    if name:
        return [p for p in policies if names_resource(name, p)]
    if not is_unknown(ref):
        return []
    named = [p for p in policies if p.urn in owner.dependencies]
    if not named:
        unknown_at(pool.unknown, owner, what)
    return named or policies


def _placement_problems(pool: Pool, g: NodeGroup, row: InstanceType) -> list[str]:
    """What is wrong with a training MIG's compact placement (workload policy or reservation)."""
    problems = []
    for t in g.templates:
        for p in _policies(pool, pick(t.props, "resourcePolicies"), t, "resourcePolicies"):
            placement = pick(p.props, "groupPlacementPolicy") or {}
            if pick(placement, "vmCount") is not None:
                problems.append(f"instance template {t.name} names placement policy {p.name} with vmCount, which "
                                "admits only VMs created together; a MIG's placement is a workload policy")
    if any(_reserved(t) for t in g.templates) or machine_family(row.instance_type) not in WORKLOAD_POLICY_FAMILIES:
        return problems  # the reservation's own placement, or a family Google documents no MIG placement for
    ref = pick(pick(g.resource.props, "resourcePolicies") or {}, "workloadPolicy")
    linked = [p for p in _policies(pool, ref, g.resource, "resourcePolicies.workloadPolicy")
              if str(pick(pick(p.props, "workloadPolicy") or {}, "type") or "").upper() == WORKLOAD_POLICY_TYPE]
    if not linked:
        problems.append(f"node group {g.name} has no {WORKLOAD_POLICY_TYPE} workload policy and consumes no "
                        "specific reservation, so nothing places its VMs close together")
    return problems


def _setup_problems(pool: Pool, row: InstanceType) -> list[str]:
    """A GPUDirect-TCPX(O) cluster whose fabric software nobody starts (gpufleet installs none)."""
    gap = tcpx_setup_gap(row)
    recorded = pick(pool.component.props, "pool") if pool.component else None  # the component's PoolPlan
    if gap is None or pick(recorded or {}, "fabric_setup_by_workload") is True:
        return []
    return [f"its fabric is not enabled ({gap}), and the run does not set fabric_setup_by_workload: true"]


READER = GcpReader()

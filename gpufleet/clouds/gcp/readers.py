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
                                                                    reservationAffinity,
                                                                    scheduling.provisioningModel /
                                                                    preemptible (a SPOT or preemptible
                                                                    template makes its MIG all spot)
``gcp:compute/resourcePolicy``                                      workloadPolicy.type,
                                                                    groupPlacementPolicy.vmCount
``gcp:compute/resizeRequest`` (flex-start)                          resizeBy: nodes its MIG gains
                                                                    (instanceGroupManager, else the MIG
                                                                    it depends on) when DWS finds them
``gcp:compute/instance``                                            a group of one: zone, machineType
``gcp:container/nodePool`` (GKE)                                    autoscaling total or per-zone bounds
                                                                    × nodeLocations, nodeCount,
                                                                    nodeConfig.machineType,
                                                                    networkConfig.additionalNode-
                                                                    NetworkConfigs, placementPolicy,
                                                                    nodeConfig.reservationAffinity,
                                                                    queuedProvisioning
``gcp:tpu/v2Vm`` / ``gcp:tpu/v2QueuedResource``                     TPU slices (:mod:`.tpu_readers`)
``gcp:container/nodePool`` of a TPU machine type                    TPU slice node pools: nodes × chips
                                                                    per node, placementPolicy.tpuTopology
                                                                    (:mod:`.gke_tpu_readers`)
==================================================================  ===================================

A MIG carries no labels: its autoscaler and itself are found through their pool component. Its
templates are those its versions name, else (a self link unknown during a preview) those it depends
on, else every template of its pool.

A training MIG's compact placement is a HIGH_THROUGHPUT workload policy on the group, or a specific
reservation its template consumes (the reservation places its VMs); families without workload policies
need none. A COLLOCATED policy with ``vmCount``
on a MIG's template is a problem: it admits only that many VMs created at once, which a MIG does not do
(https://cloud.google.com/compute/docs/instance-groups/about-workload-policies). A GPUDirect-TCPX(O)
cluster is a problem unless its component records that the run sets the fabric's software up itself
(``pool.fabric_setup_by_workload``): gpufleet installs none of it.

A GKE node pool (:mod:`gpufleet.clouds.gcp.gke`) bounds itself: ``autoscaling.totalMaxNodeCount``, or
``maxNodeCount`` per zone times its zones; without autoscaling, ``nodeCount`` per zone. Its GPU NICs are
additional node networks; its compact placement a COMPACT placement policy naming a HIGH_THROUGHPUT
workload policy, or a specific reservation; a queued-provisioning pool takes none (Google documents no
COMPACT placement with it on GPUs) and runs at its maximum once its request is admitted. An RDMA node
pool also needs a ``kubernetes:apps/v1:DaemonSet`` of its pool running the NCCL gIB plugin installer.

An autoscaler is paired with the group it scales by its target, a dependency, or the names gpufleet's
components give the pair (``<stem>-mig`` / ``<stem>-autoscaler``); one nothing links fails closed
(:func:`gpufleet.policy.resources.build_inventory`), never paired by name order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gpufleet.clouds.gcp import gke
from gpufleet.clouds.gcp.profile import (
    AUTOSCALERS,
    INSTANCE,
    REGION_MIG,
    RESIZE_REQUEST,
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
from gpufleet.clouds.gcp.gke_tpu_readers import gke_slice_problems, is_gke_slice_pool
from gpufleet.clouds.gcp.tpu import QUEUED_RESOURCE, V2VM, is_tpu
from gpufleet.clouds.gcp.tpu_readers import tpu_node_group, tpu_slice_problems
from gpufleet.policy.resources import CloudReader, NodeGroup, Pool, Resource, as_int, is_unknown, known
from gpufleet.policy.resources import known_list, names_resource, pick, unknown_at

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType


def _machine_type(value: object) -> str | None:
    """``zones/us-central1-a/machineTypes/a3-ultragpu-8g`` or ``a3-ultragpu-8g`` → ``a3-ultragpu-8g``."""
    name = known(value)
    return name.rsplit("/", 1)[-1] if name else None


def _with_resize_requests(pool: Pool, mig: Resource, size: int | None) -> int | None:
    """A MIG's size with the nodes its flex-start resize requests add (None when one is unknown)."""
    for request in pool.of_type(RESIZE_REQUEST):
        target = known(pick(request.props, "instanceGroupManager"))
        if not (names_resource(target, mig) if target else mig.urn in request.dependencies):
            continue
        more = as_int(pick(request.props, "resizeBy"))
        size = None if size is None or more is None else size + more
    return size


class GcpReader(CloudReader):
    """Reads managed instance groups (bounded by their autoscaler) and instances; checks GPU NICs."""

    cloud = GcpProfile.name
    group_types = (REGION_MIG, ZONE_MIG, gke.NODE_POOL, V2VM, QUEUED_RESOURCE)
    single_node_types = (INSTANCE,)
    autoscaler_types = AUTOSCALERS
    component_names = ("-mig", "-autoscaler")

    def node_group(self, pool: Pool, r: Resource) -> NodeGroup:
        if r.type in (V2VM, QUEUED_RESOURCE):
            return tpu_node_group(pool, r, self.cloud)
        p = r.props
        if r.type == gke.NODE_POOL:
            return _node_pool(pool, r)
        if r.type in (ZONE_MIG, INSTANCE):
            zone = known(pick(p, "zone"))
            zones: tuple[str, ...] = (zone,) if zone else ()
        else:
            zones = known_list(pick(p, "distributionPolicyZones")) or pool.declared_zones
        if r.type == INSTANCE:
            return NodeGroup(resource=r, cloud=self.cloud, min_nodes=1, max_nodes=1, count=1, zones=zones,
                             instance_type=known(pick(p, "machineType")))
        size = _with_resize_requests(pool, r, as_int(pick(p, "targetSize")))
        refs = {pick(v, "instanceTemplate") for v in (pick(p, "versions") or []) if isinstance(v, Mapping)}
        refs.add(pick(p, "instanceTemplate"))
        names = {v for v in refs if known(v)}
        templates = pool.of_type(*TEMPLATES)
        linked = ([t for t in templates if any(names_resource(ref, t) for ref in names)]
                  # a reference unknown until apply: the templates the group depends on
                  or [t for t in templates if t.urn in r.dependencies] or list(templates))
        itype = next((m for m in (_machine_type(pick(t.props, "machineType")) for t in linked) if m), None)
        scheduling = [pick(t.props, "scheduling") for t in linked]
        unknown = any(is_unknown(s) or is_unknown(pick(s, "provisioningModel")) or is_unknown(pick(s, "preemptible"))
                      for s in scheduling)
        spot = any(str(pick(s, "provisioningModel") or "").upper() == "SPOT" or pick(s, "preemptible") is True
                   for s in scheduling)
        return NodeGroup(resource=r, cloud=self.cloud, min_nodes=size, max_nodes=size, count=size, zones=zones,
                         instance_type=itype, templates=linked, spot_nodes=None if unknown else 0, spot_group=spot)

    def apply_autoscaler(self, group: NodeGroup) -> None:
        assert group.autoscaler is not None
        policy = pick(group.autoscaler.props, "autoscalingPolicy") or {}
        group.min_nodes = as_int(pick(policy, "minReplicas"))
        group.max_nodes = as_int(pick(policy, "maxReplicas"))
        if str(pick(policy, "mode") or "ON").upper() == "OFF":
            group.min_nodes = group.max_nodes = group.count

    def fabric_problems(self, pool: Pool, row: InstanceType) -> list[str]:
        if is_tpu(row):
            if is_gke_slice_pool(pool):  # TPU slice node pools of a GKE cluster
                return gke_slice_problems(pool, row)
            return tpu_slice_problems(pool, row, (V2VM, QUEUED_RESOURCE))
        problems: list[str] = []
        layout = layout_for(row.instance_type)
        want = layout.gpu_nics if layout is not None else row.fabric_interfaces
        for g in pool.groups:
            if g.resource.type == gke.NODE_POOL:
                problems += _node_pool_fabric(pool, g, row)
                continue
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


def _node_pool(pool: Pool, r: Resource) -> NodeGroup:
    """A GKE node pool: its own bounds (no autoscaler beside it), zones and machine type."""
    p = r.props
    zones = known_list(pick(p, "nodeLocations")) or pool.declared_zones
    per_zone = len(zones) or 1
    itype = _machine_type(pick(pick(p, "nodeConfig") or {}, "machineType"))
    auto = pick(p, "autoscaling")
    fixed = as_int(pick(p, "nodeCount"))
    count = None if fixed is None else fixed * per_zone
    if isinstance(auto, Mapping) and auto:
        if pick(auto, "totalMaxNodeCount") is not None or pick(auto, "totalMinNodeCount") is not None:
            low, high = as_int(pick(auto, "totalMinNodeCount")), as_int(pick(auto, "totalMaxNodeCount"))
        else:
            low, high = (None if v is None else v * per_zone for v in
                         (as_int(pick(auto, "minNodeCount")), as_int(pick(auto, "maxNodeCount"))))
        if _queued(r) or count is None:
            # A queued request is admitted whole, at the maximum; otherwise the minimum is what is sure.
            count = high if _queued(r) else low
        return NodeGroup(resource=r, cloud=GcpProfile.name, min_nodes=low, max_nodes=high, count=count, zones=zones,
                         instance_type=itype)
    return NodeGroup(resource=r, cloud=GcpProfile.name, min_nodes=count, max_nodes=count, count=count, zones=zones,
                     instance_type=itype)


def _queued(r: Resource) -> bool:
    return pick(pick(r.props, "queuedProvisioning") or {}, "enabled") is True


def _node_pool_fabric(pool: Pool, g: NodeGroup, row: InstanceType) -> list[str]:
    """What a GKE training node pool lacks: its additional node networks, its placement, its NCCL plugin."""
    r = g.resource
    problems = []
    want = gke.wanted_networks(row)
    config = pick(r.props, "networkConfig") or {}
    managed = str(pick(config, "acceleratorNetworkProfile") or "").lower() == "auto"  # GKE attaches them itself
    if not managed and not unknown_at(pool.unknown, r, "networkConfig.additionalNodeNetworkConfigs"):
        have = len([n for n in pick(config, "additionalNodeNetworkConfigs") or [] if isinstance(n, Mapping)])
        if have < want:
            problems.append(f"node pool {g.name} attaches {have} of the {want} additional node networks a "
                            f"{row.instance_type} needs for its GPU NICs ({want - have} missing)")
    affinity = pick(pick(r.props, "nodeConfig") or {}, "reservationAffinity") or {}
    reserved = str(pick(affinity, "consumeReservationType") or "").upper() == "SPECIFIC_RESERVATION"
    if not (_queued(r) or reserved or machine_family(row.instance_type) not in WORKLOAD_POLICY_FAMILIES):
        placement = pick(r.props, "placementPolicy") or {}
        compact = str(pick(placement, "type") or "").upper() == "COMPACT"
        linked = [p for p in _policies(pool, pick(placement, "policyName"), r, "placementPolicy.policyName")
                  if str(pick(pick(p.props, "workloadPolicy") or {}, "type") or "").upper() == WORKLOAD_POLICY_TYPE]
        if not (compact and linked):
            problems.append(f"node pool {g.name} has no COMPACT placement with a {WORKLOAD_POLICY_TYPE} workload "
                            "policy and consumes no specific reservation, so nothing places its nodes close together")
    if gke.needs_gib(row) and not _gib_installer(pool):
        problems.append(f"nothing installs the NCCL gIB plugin on node pool {g.name} (no DaemonSet running "
                        f"{gke.GIB_IMAGE}), so NCCL would not use RDMA")
    return problems


def _gib_installer(pool: Pool) -> bool:
    """True when one of the pool's DaemonSets runs the gIB installer image (or its image is unknown: the
    DaemonSet is there, and what it runs is Google's installer whatever version)."""
    for ds in pool.of_type(gke.GIB_DAEMONSET):
        spec = pick(pick(pick(ds.props, "spec") or {}, "template") or {}, "spec") or {}
        for container in (pick(spec, "initContainers") or []) + (pick(spec, "containers") or []):
            image = known(pick(container, "image")) if isinstance(container, Mapping) else None
            if image is not None and image.split(":", 1)[0].split("@", 1)[0] == gke.GIB_IMAGE:
                return True
    return False


READER = GcpReader()

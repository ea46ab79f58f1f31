"""GCP backend: system and fabric VPCs per site, GPUDirect training clusters, autoscaled regional MIGs.

What GCP offers and refuses (NIC layouts by machine family, the fabric address slots, placement,
reservations, the metric path, image forms, default images) is in :mod:`gpufleet.clouds.gcp.profile`;
this module builds it:

* per site: the system VPC and subnet (Private Google Access on: the nodes have no external IP and
  reach monitoring.googleapis.com through it), and the GPU / RoCE VPCs the pools' layouts need;
* per training cluster: an instance template with the layout's NICs, a zonal MIG, and its placement:
  a HIGH_THROUGHPUT workload policy on the MIG, or a specific reservation's own placement (with the
  reservation-bound provisioning model where the profile says so);
* per inference pool: a service account allowed to write Cloud Monitoring metrics (and nothing else),
  a template running as it, a BALANCED regional MIG and an autoscaler on the per-instance metric;
  with spot nodes in the plan (``PoolPlan.spot_nodes``), a second regional MIG beside it whose
  template sets ``scheduling.provisioning_model: SPOT`` (with ``preemptible: true`` and
  ``automatic_restart: false``, as a Spot VM requires) and ``instance_termination_action: DELETE``
  (a preempted VM is deleted and its MIG recreates it when capacity returns), autoscaled from one VM
  per zone, so the group always has instances publishing the per-instance metric, up to the spot
  nodes (https://cloud.google.com/compute/docs/instances/spot,
  https://cloud.google.com/compute/docs/instance-groups/create-mig-with-spot-vms). Each MIG's autoscaler
  reads the metric of its own group's VMs, and a group on a per-instance metric cannot scale below one
  VM, since the autoscaler needs the metric of at least one running VM
  (https://cloud.google.com/compute/docs/autoscaler/scaling-stackdriver-monitoring-metrics, "Per-instance
  metrics"); so an all-spot pool (``PoolPlan.on_demand_nodes`` 0) gets the SPOT MIG and its autoscaler
  alone, no on-demand MIG or template (one at 0 VMs could never scale).
* a pool on Cloud TPUs: TPU slices and TPU VMs, built by :mod:`components.gcp_tpu`.

Both MIGs wait for their VMs (``wait_for_instances``): pulumi_gcp 10.2.0 documents that without it the
resource returns once the group exists, and with it the provider keeps waiting until the VMs are
created or the timeout passes; a MIG creates its VMs asynchronously
(https://cloud.google.com/compute/docs/instance-groups/getting-info-about-migs, "stable"), so
``pulumi up`` would otherwise report success with no VM running.
"""

from __future__ import annotations

import ipaddress
import warnings
from typing import Any

import pulumi
import pulumi_gcp as gcp

with warnings.catch_warnings():
    # pulumi_gcp 10.2 warns, when compute is imported, about deprecated classes it still defines
    # (MangedSslCertificate, RouterStatus); nothing here uses them.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_gcp\.")
    # The SDK's submodules load lazily: touching a member is what imports them.
    _ = gcp.compute.Network, gcp.serviceaccount.Account, gcp.projects.IAMMember

from components.base import CloudBackend, ClusterBuild, InferencePoolArgs, NetworkBuild, PoolBuild
from components.base import SiteNetworkArgs, TrainingClusterArgs, TrainingTarget, carve, child, invoke_opts, register
from components.gcp_tpu import build_tpu_inference, build_tpu_training
from gpufleet.catalog import InstanceType, load_catalog
from gpufleet.clouds.gcp.profile import (
    FABRIC_RANGE,
    FABRIC_SUBNET_PREFIX,
    GPU_VPC_FIRST_SLOT,
    HYPERDISK_ONLY,
    INFERENCE_TARGET_SHAPE,
    INFERENCE_WAIT_MINUTES,
    MONITORING_WRITER_ROLE,
    NODE_SCOPES,
    TRAINING_NODE_ROLES,
    ROCE_SUBNETS_PER_ZONE,
    SLOT_GVNIC2,
    SLOTS_ROCE,
    SYSTEM_MTU,
    TRAINING_WAIT_MINUTES,
    WORKLOAD_POLICY_TYPE,
    flex_start_run_s,
    image_family,
    is_image_link,
    layout_for,
    machine_family,
    metric_type,
    placement_for,
    reservation_affinity_value,
    reservation_bound,
    roce_network_profile,
    service_account_email,
    service_account_id,
)
from gpufleet.clouds.gcp.tpu import is_tpu
from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec

BOOT_DISK_GIB = 500
SPOT = "SPOT"
"""The provisioning model of a Spot VM (https://cloud.google.com/compute/docs/instances/spot)."""
FLEX_START = "FLEX_START"
"""The provisioning model of the VMs a Dynamic Workload Scheduler resize request creates."""
SPOT_TERMINATION = "DELETE"
"""What becomes of a preempted Spot VM: deleted (no disk to keep paying for); its MIG recreates it."""


def _fabric_subnet(slot: int) -> str:
    return carve(FABRIC_RANGE, FABRIC_SUBNET_PREFIX, slot)


def _timeouts(minutes: int) -> pulumi.CustomTimeouts:
    """How long creating or updating a MIG may wait for its VMs before ``pulumi up`` fails."""
    return pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes}m")


def _gpu_vpc_kind(fabric: str) -> str:
    """``gpudirect-tcpxo`` → ``tcpxo``: the handle and name part of that fabric's GPU VPCs."""
    return fabric.removeprefix("gpudirect-")


@register("gcp")
class GcpBackend(CloudBackend):
    """Compute Engine: VPCs, compact placement policies, instance templates, MIGs, autoscalers."""

    def provider(self, site: SiteSpec) -> pulumi.ProviderResource:
        return gcp.Provider(f"{site.name}-provider", project=site.project, region=site.region)

    def build_network(self, owner: Any, args: SiteNetworkArgs) -> NetworkBuild:
        site = args.site
        name = owner.pulumi_resource_name
        prefix = ipaddress.ip_network(site.network_cidr).prefixlen + 1
        system = gcp.compute.Network(f"{name}-net", auto_create_subnetworks=False, mtu=SYSTEM_MTU,
                                     routing_mode="REGIONAL", opts=child(owner))
        subnet = gcp.compute.Subnetwork(f"{name}-nodes", network=system.id, region=site.region,
                                        ip_cidr_range=carve(site.network_cidr, prefix, 0),
                                        private_ip_google_access=True, opts=child(owner))
        self._internal_firewall(owner, f"{name}-internal", system, [site.network_cidr])
        handles: dict[str, Any] = {"system": (system, subnet), "project": site.project}

        layouts = {layout_for(p.instance_type) for p in args.pools
                   if p.role == "training" and p.fabric != "none"}
        roce_zones = sorted({p.zones[0] for p in args.pools if p.role == "training" and p.fabric != "none"
                             and (lay := layout_for(p.instance_type)) is not None and lay.roce},
                            key=site.zones.index)
        for fabric, first in GPU_VPC_FIRST_SLOT.items():
            # One VPC per GPU NIC of the widest layout delivering this GPUDirect fabric.
            delivering = [(lay.gpu_nics, lay.mtu) for lay in layouts if lay is not None and lay.fabric == fabric]
            if delivering:
                kind = _gpu_vpc_kind(fabric)
                count, mtu = max(delivering)
                handles[kind] = [
                    self._gpu_vpc(owner, f"{name}-{kind}-{k}", _fabric_subnet(first + k), site.region, mtu)
                    for k in range(count)
                ]
        if roce_zones:
            handles["gvnic2"] = self._gpu_vpc(owner, f"{name}-gvnic2", _fabric_subnet(SLOT_GVNIC2), site.region,
                                              SYSTEM_MTU)
            handles["roce"] = {}
            for zone in roce_zones:
                first = SLOTS_ROCE + ROCE_SUBNETS_PER_ZONE * site.zones.index(zone)
                roce = gcp.compute.Network(
                    f"{name}-roce-{zone}", auto_create_subnetworks=False, mtu=SYSTEM_MTU,
                    network_profile=roce_network_profile(str(site.project), zone), opts=child(owner))
                subnets = [
                    gcp.compute.Subnetwork(f"{name}-roce-{zone}-{j}", network=roce.id, region=site.region,
                                           ip_cidr_range=_fabric_subnet(first + j), opts=child(owner))
                    for j in range(ROCE_SUBNETS_PER_ZONE)
                ]
                # No firewall rules: a RoCE VPC does not accept them.
                handles["roce"][zone] = (roce, subnets)
        return NetworkBuild(network_id=system.id, subnet_ids={zone: subnet.id for zone in site.zones},
                            handles=handles)

    def _internal_firewall(self, owner: Any, name: str, network: gcp.compute.Network, ranges: list[str]) -> None:
        gcp.compute.Firewall(name, network=network.id, direction="INGRESS", source_ranges=ranges,
                             allows=[gcp.compute.FirewallAllowArgs(protocol="all")], opts=child(owner))

    def _gpu_vpc(self, owner: Any, name: str, cidr: str, region: str,
                 mtu: int) -> tuple[gcp.compute.Network, gcp.compute.Subnetwork]:
        network = gcp.compute.Network(name, auto_create_subnetworks=False, mtu=mtu, opts=child(owner))
        subnet = gcp.compute.Subnetwork(f"{name}-subnet", network=network.id, region=region, ip_cidr_range=cidr,
                                        opts=child(owner))
        self._internal_firewall(owner, f"{name}-internal", network, [cidr])
        return network, subnet

    def _image(self, owner: Any, row: InstanceType, override: str | None) -> pulumi.Input[str]:
        if override and is_image_link(override):
            return override
        project, family = override.split("/") if override else image_family(row)
        return gcp.compute.get_image_output(family=family, project=project, opts=invoke_opts(owner)).self_link

    @staticmethod
    def _nic(network: gcp.compute.Network, subnet: gcp.compute.Subnetwork,
             nic_type: str) -> gcp.compute.InstanceTemplateNetworkInterfaceArgs:
        return gcp.compute.InstanceTemplateNetworkInterfaceArgs(network=network.id, subnetwork=subnet.id,
                                                                nic_type=nic_type)

    def _template(self, owner: Any, name: str, pool: PoolPlan, row: InstanceType, image: pulumi.Input[str],
                  nics: list[gcp.compute.InstanceTemplateNetworkInterfaceArgs], *, provisioning_model: str | None = None,
                  **extra: Any) -> gcp.compute.InstanceTemplate:
        disk_type = "hyperdisk-balanced" if machine_family(row.instance_type) in HYPERDISK_ONLY else "pd-balanced"
        spot = provisioning_model == SPOT
        ends = provisioning_model in (SPOT, FLEX_START)  # no restart; deleted when preempted or the run ends
        return gcp.compute.InstanceTemplate(
            name,
            machine_type=row.instance_type,
            disks=[gcp.compute.InstanceTemplateDiskArgs(source_image=image, boot=True, auto_delete=True,
                                                        disk_size_gb=BOOT_DISK_GIB, disk_type=disk_type)],
            network_interfaces=nics,
            scheduling=gcp.compute.InstanceTemplateSchedulingArgs(
                on_host_maintenance="TERMINATE", automatic_restart=not ends, provisioning_model=provisioning_model,
                preemptible=True if spot else None, instance_termination_action=SPOT_TERMINATION if ends else None),
            metadata={"enable-oslogin": "TRUE"},
            labels=dict(sorted(pool.tags.items())),
            opts=child(owner),
            **extra,
        )

    def build_training(self, owner: Any, args: TrainingClusterArgs) -> ClusterBuild:
        if is_tpu(load_catalog().instance(args.pool.instance_type)):
            return build_tpu_training(owner, args)
        pool, row, name, zone = TrainingTarget.of(owner, args)
        handles = args.network.handles
        system, system_subnet = handles["system"]
        nics = [self._nic(system, system_subnet, "GVNIC")]
        layout = layout_for(row.instance_type) if row.fabric != "none" else None
        gpu_nics = 0
        if layout is not None:
            if layout.host_nics > 1:
                second, second_subnet = handles["gvnic2"]
                nics.append(self._nic(second, second_subnet, "GVNIC"))
            if layout.roce:
                roce, subnets = handles["roce"][zone]
                nics += [self._nic(roce, subnets[j], layout.gpu_nic_type) for j in range(layout.gpu_nics)]
            else:
                vpcs = handles[_gpu_vpc_kind(layout.fabric)]
                nics += [self._nic(net, sub, layout.gpu_nic_type) for net, sub in vpcs[: layout.gpu_nics]]
            gpu_nics = layout.gpu_nics
        extra: dict[str, Any] = {}
        placement_ids: list[pulumi.Input[str]] = []
        group_extra: dict[str, Any] = {}
        placement = placement_for(pool)
        if placement == "workload-policy":
            policy = gcp.compute.ResourcePolicy(
                f"{name}-workload", region=pool.region,
                workload_policy=gcp.compute.ResourcePolicyWorkloadPolicyArgs(type=WORKLOAD_POLICY_TYPE),
                opts=child(owner))
            group_extra["resource_policies"] = gcp.compute.InstanceGroupManagerResourcePoliciesArgs(
                workload_policy=policy.self_link)
            placement_ids.append(policy.self_link)
        elif placement == "reservation" and pool.reservation_id:
            # The reservation places its VMs itself: no policy of gpufleet's on the template or the group.
            extra["reservation_affinity"] = gcp.compute.InstanceTemplateReservationAffinityArgs(
                type="SPECIFIC_RESERVATION",
                specific_reservation=gcp.compute.InstanceTemplateReservationAffinitySpecificReservationArgs(
                    key="compute.googleapis.com/reservation-name",
                    values=[reservation_affinity_value(pool.reservation_id)]))
            placement_ids.append(pool.reservation_id)
        flex = pool.capacity_type == "flex_start"
        if flex:  # Flex-start VMs hold no reservation; a VM that fails is left for the run to notice
            extra["reservation_affinity"] = gcp.compute.InstanceTemplateReservationAffinityArgs(type="NO_RESERVATION")
            group_extra["instance_lifecycle_policy"] = gcp.compute.InstanceGroupManagerInstanceLifecyclePolicyArgs(
                default_action_on_failure="DO_NOTHING")
        model = "RESERVATION_BOUND" if reservation_bound(pool) else FLEX_START if flex else None
        email = self._node_account(owner, name, pool, str(handles["project"]), TRAINING_NODE_ROLES,
                                   "log and metric writer")
        template = self._template(owner, f"{name}-template", pool, row, self._image(owner, row, args.image), nics,
                                  provisioning_model=model, service_account=gcp.compute.InstanceTemplateServiceAccountArgs(
                                      email=email, scopes=list(NODE_SCOPES)), **extra)
        group = gcp.compute.InstanceGroupManager(
            f"{name}-mig",
            zone=zone,
            base_instance_name=pool.name[:50].rstrip("-"),
            # flex-start: the resize request adds every node at once when DWS finds them
            target_size=0 if flex else pool.nodes,
            versions=[gcp.compute.InstanceGroupManagerVersionArgs(name="primary",
                                                                  instance_template=template.self_link_unique)],
            # A new template must not roll a running training cluster: replace nodes only when asked.
            update_policy=gcp.compute.InstanceGroupManagerUpdatePolicyArgs(type="OPPORTUNISTIC",
                                                                           minimal_action="REPLACE"),
            # until STABLE: every VM created, or `pulumi up` fails at the timeout (flex-start: VMs come later)
            wait_for_instances=not flex,
            wait_for_instances_status=None if flex else "STABLE",
            opts=child(owner, custom_timeouts=_timeouts(TRAINING_WAIT_MINUTES),
                       ignore_changes=["targetSize"] if flex else None),
            **group_extra,
        )
        if flex:
            gcp.compute.ResizeRequest(
                f"{name}-flex-start", zone=zone, instance_group_manager=group.name, resize_by=pool.nodes,
                requested_run_duration=gcp.compute.ResizeRequestRequestedRunDurationArgs(
                    seconds=str(flex_start_run_s(pool))),
                description=f"gpufleet {pool.name}: {pool.nodes} Flex-start VMs (best-effort, not a reservation)",
                opts=child(owner))
        return ClusterBuild(node_group_ids=[group.self_link], placement_ids=placement_ids,
                            fabric_interfaces_attached=gpu_nics)

    def build_inference(self, owner: Any, args: InferencePoolArgs) -> PoolBuild:
        pool = args.pool
        row = load_catalog().instance(pool.instance_type)
        if is_tpu(row):
            return build_tpu_inference(owner, args)
        name = owner.pulumi_resource_name
        handles = args.network.handles
        system, system_subnet = handles["system"]
        email = self._node_account(owner, name, pool, str(handles["project"]), (MONITORING_WRITER_ROLE,),
                                   "metric writer")
        image = self._image(owner, row, args.image)  # one image lookup for the on-demand and spot templates
        account = gcp.compute.InstanceTemplateServiceAccountArgs(email=email, scopes=list(NODE_SCOPES))
        on_demand = pool.on_demand_nodes
        built: list[tuple[gcp.compute.RegionInstanceGroupManager, gcp.compute.RegionAutoscaler]] = []
        if on_demand:
            template = self._template(owner, f"{name}-template", pool, row, image,
                                      [self._nic(system, system_subnet, "GVNIC")], service_account=account)
            built.append(self._serving_group(owner, name, pool, template, min(pool.min_nodes, on_demand), on_demand,
                                             standby=True))
        spot_notes: list[str] = []
        if pool.spot_nodes:
            spot_template = self._template(owner, f"{name}-spot-template", pool, row, image,
                                           [self._nic(system, system_subnet, "GVNIC")], provisioning_model=SPOT,
                                           service_account=account)
            least = min(len(pool.zones), pool.spot_nodes)
            built.append(self._serving_group(owner, f"{name}-spot", pool, spot_template,
                                             max(pool.min_nodes - on_demand, least), pool.spot_nodes, standby=False))
            where = "beside the on-demand floor" if on_demand else \
                "and no on-demand MIG (the plan's on-demand floor is 0)"
            spot_notes.append(f"{pool.spot_nodes} spot VMs in {'a second' if on_demand else 'a'} MIG ({name}-spot-mig, "
                              f"provisioning model SPOT, preempted VMs deleted) {where}; {least} of them always run "
                              "so the group publishes the metric it scales on")
        notes = ["the managed instance group carries no labels (GCP has none on MIGs); its template does",
                 f"nodes write {metric_type(pool)} (gce_instance) as {service_account_id(pool.name)}, which may "
                 f"only write metrics ({MONITORING_WRITER_ROLE}), through Private Google Access", *spot_notes]
        group, autoscaler = built[0]  # the on-demand MIG, or an all-spot pool's SPOT MIG
        return PoolBuild(node_group_id=group.self_link, autoscaler_id=autoscaler.self_link,
                         warm_nodes=min(pool.min_nodes, on_demand), notes=notes)

    def _serving_group(self, owner: Any, name: str, pool: PoolPlan, template: gcp.compute.InstanceTemplate,
                       minimum: int, maximum: int, *, standby: bool
                       ) -> tuple[gcp.compute.RegionInstanceGroupManager, gcp.compute.RegionAutoscaler]:
        """A BALANCED regional MIG of ``template`` autoscaled from ``minimum`` to ``maximum`` on the pool's
        per-instance metric; ``standby``: its minimum also kept as stopped VMs it starts first on scale-out."""
        warmup = min(int(pool.boot_minutes * 60), 3600)
        group = gcp.compute.RegionInstanceGroupManager(
            f"{name}-mig",
            region=pool.region,
            base_instance_name=pool.name[:50].rstrip("-") if standby else pool.name[:45].rstrip("-") + "-spot",
            distribution_policy_zones=list(pool.zones),
            distribution_policy_target_shape=INFERENCE_TARGET_SHAPE,
            versions=[gcp.compute.RegionInstanceGroupManagerVersionArgs(name="primary",
                                                                        instance_template=template.self_link_unique)],
            # BALANCED does not support proactive redistribution; new templates roll out proactively.
            update_policy=gcp.compute.RegionInstanceGroupManagerUpdatePolicyArgs(
                type="PROACTIVE", minimal_action="REPLACE", instance_redistribution_type="NONE"),
            target_size=minimum,
            # Warm capacity: stopped, pre-initialised VMs the MIG starts first on scale-out.
            standby_policy=gcp.compute.RegionInstanceGroupManagerStandbyPolicyArgs(
                mode="SCALE_OUT_POOL", initial_delay_sec=warmup) if standby else None,
            target_stopped_size=minimum if standby else None,
            wait_for_instances=True,  # the minimum and the standby pool exist before `pulumi up` succeeds
            wait_for_instances_status="STABLE",
            opts=child(owner, ignore_changes=["targetSize"],
                       custom_timeouts=_timeouts(INFERENCE_WAIT_MINUTES + -(-warmup // 60))),
        )
        autoscaler = gcp.compute.RegionAutoscaler(
            f"{name}-autoscaler",
            region=pool.region,
            target=group.id,
            autoscaling_policy=gcp.compute.RegionAutoscalerAutoscalingPolicyArgs(
                min_replicas=minimum,
                max_replicas=maximum,
                cooldown_period=warmup,
                mode="ON",
                metrics=[gcp.compute.RegionAutoscalerAutoscalingPolicyMetricArgs(
                    name=metric_type(pool),
                    target=pool.scaling_target_per_node,
                    type="GAUGE",
                )],
            ),
            opts=child(owner),
        )
        return group, autoscaler

    @staticmethod
    def _node_account(owner: Any, name: str, pool: PoolPlan, project: str, roles: tuple[str, ...],
                      what: str) -> pulumi.Output[str]:
        """The pool's node service account, granted ``roles`` in the project (``what`` names them in
        its display name); its email."""
        account_id = service_account_id(pool.name)
        account = gcp.serviceaccount.Account(
            f"{name}-nodes", account_id=account_id, project=project,
            display_name=f"gpufleet {pool.name} nodes ({what})", opts=child(owner))
        # The email has a documented form; deriving it from the account keeps the dependency on it.
        email = account.account_id.apply(lambda aid: service_account_email(aid or account_id, project))
        for role in roles:
            kind = role.rsplit(".", 1)[-1].removesuffix("Writer")
            gcp.projects.IAMMember(f"{name}-{kind}-writer", project=project, role=role,
                                   member=email.apply(lambda e: f"serviceAccount:{e}"), opts=child(owner))
        return email

"""GCP backend: system and fabric VPCs per site, GPUDirect training clusters, autoscaled regional MIGs.

What GCP offers and refuses (NIC layouts by machine family, the fabric address slots, capacity
types, image forms, default images) is in :mod:`gpufleet.clouds.gcp.profile`; this module builds
it: the layout's host and GPU VPCs per site, and the layout's NICs per training template.

``InstanceTemplate.resource_policies`` is a single self link (a string) in pulumi_gcp 10.2.0.
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
    _ = gcp.compute.Network

from components.base import (
    CloudBackend,
    ClusterBuild,
    InferencePoolArgs,
    NetworkBuild,
    PoolBuild,
    SiteNetworkArgs,
    TrainingClusterArgs,
    carve,
    child,
    invoke_opts,
    register,
)
from gpufleet.catalog import InstanceType, load_catalog
from gpufleet.clouds.gcp.profile import (
    FABRIC_RANGE,
    FABRIC_SUBNET_PREFIX,
    GPU_VPC_FIRST_SLOT,
    HYPERDISK_ONLY,
    ROCE_SUBNETS_PER_ZONE,
    SLOT_GVNIC2,
    SLOTS_ROCE,
    SYSTEM_MTU,
    image_family,
    is_image_link,
    layout_for,
    machine_family,
    roce_network_profile,
)
from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec

BOOT_DISK_GIB = 500


def _fabric_subnet(slot: int) -> str:
    return carve(FABRIC_RANGE, FABRIC_SUBNET_PREFIX, slot)


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
                  nics: list[gcp.compute.InstanceTemplateNetworkInterfaceArgs], **extra: Any) -> gcp.compute.InstanceTemplate:
        disk_type = "hyperdisk-balanced" if machine_family(row.instance_type) in HYPERDISK_ONLY else "pd-balanced"
        return gcp.compute.InstanceTemplate(
            name,
            machine_type=row.instance_type,
            disks=[gcp.compute.InstanceTemplateDiskArgs(source_image=image, boot=True, auto_delete=True,
                                                        disk_size_gb=BOOT_DISK_GIB, disk_type=disk_type)],
            network_interfaces=nics,
            scheduling=gcp.compute.InstanceTemplateSchedulingArgs(on_host_maintenance="TERMINATE",
                                                                  automatic_restart=True),
            metadata={"enable-oslogin": "TRUE"},
            labels=dict(sorted(pool.tags.items())),
            opts=child(owner),
            **extra,
        )

    def build_training(self, owner: Any, args: TrainingClusterArgs) -> ClusterBuild:
        pool = args.pool
        row = load_catalog().instance(pool.instance_type)
        name = owner.pulumi_resource_name
        zone = pool.zones[0]
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
        if pool.placement_group:
            policy = gcp.compute.ResourcePolicy(
                f"{name}-compact", region=pool.region,
                group_placement_policy=gcp.compute.ResourcePolicyGroupPlacementPolicyArgs(
                    collocation="COLLOCATED", vm_count=pool.nodes),
                opts=child(owner))
            extra["resource_policies"] = policy.self_link  # one self link, not a list (pulumi_gcp 10.2.0)
            placement_ids.append(policy.self_link)
        if pool.capacity_type == "reservation" and pool.reservation_id:
            extra["reservation_affinity"] = gcp.compute.InstanceTemplateReservationAffinityArgs(
                type="SPECIFIC_RESERVATION",
                specific_reservation=gcp.compute.InstanceTemplateReservationAffinitySpecificReservationArgs(
                    key="compute.googleapis.com/reservation-name", values=[pool.reservation_id]))
            placement_ids.append(pool.reservation_id)
        template = self._template(owner, f"{name}-template", pool, row, self._image(owner, row, args.image), nics,
                                  **extra)
        group = gcp.compute.InstanceGroupManager(
            f"{name}-mig",
            zone=zone,
            base_instance_name=pool.name[:50].rstrip("-"),
            target_size=pool.nodes,
            versions=[gcp.compute.InstanceGroupManagerVersionArgs(name="primary",
                                                                  instance_template=template.self_link_unique)],
            # A new template must not roll a running training cluster: replace nodes only when asked.
            update_policy=gcp.compute.InstanceGroupManagerUpdatePolicyArgs(type="OPPORTUNISTIC",
                                                                           minimal_action="REPLACE"),
            wait_for_instances=False,
            opts=child(owner),
        )
        return ClusterBuild(node_group_ids=[group.self_link], placement_ids=placement_ids,
                            fabric_interfaces_attached=gpu_nics)

    def build_inference(self, owner: Any, args: InferencePoolArgs) -> PoolBuild:
        pool = args.pool
        row = load_catalog().instance(pool.instance_type)
        name = owner.pulumi_resource_name
        system, system_subnet = args.network.handles["system"]
        template = self._template(owner, f"{name}-template", pool, row, self._image(owner, row, args.image),
                                  [self._nic(system, system_subnet, "GVNIC")])
        warmup = int(pool.boot_minutes * 60)
        group = gcp.compute.RegionInstanceGroupManager(
            f"{name}-mig",
            region=pool.region,
            base_instance_name=pool.name[:50].rstrip("-"),
            distribution_policy_zones=list(pool.zones),
            distribution_policy_target_shape="EVEN",
            versions=[gcp.compute.RegionInstanceGroupManagerVersionArgs(name="primary",
                                                                        instance_template=template.self_link_unique)],
            target_size=pool.min_nodes,
            # Warm capacity: stopped, pre-initialised VMs the MIG starts first on scale-out.
            standby_policy=gcp.compute.RegionInstanceGroupManagerStandbyPolicyArgs(
                mode="SCALE_OUT_POOL", initial_delay_sec=min(warmup, 3600)),
            target_stopped_size=pool.min_nodes,
            wait_for_instances=False,
            opts=child(owner, ignore_changes=["targetSize"]),
        )
        autoscaler = gcp.compute.RegionAutoscaler(
            f"{name}-autoscaler",
            region=pool.region,
            target=group.id,
            autoscaling_policy=gcp.compute.RegionAutoscalerAutoscalingPolicyArgs(
                min_replicas=pool.min_nodes,
                max_replicas=pool.nodes,
                cooldown_period=warmup,
                mode="ON",
                metrics=[gcp.compute.RegionAutoscalerAutoscalingPolicyMetricArgs(
                    name=f"custom.googleapis.com/{pool.scaling_metric_namespace}/{pool.scaling_metric_name}",
                    target=pool.scaling_target_per_node,
                    type="GAUGE",
                )],
            ),
            opts=child(owner),
        )
        notes = ["the managed instance group carries no labels (GCP has none on MIGs); its template does"]
        return PoolBuild(node_group_id=group.self_link, autoscaler_id=autoscaler.self_link,
                         warm_nodes=pool.min_nodes, notes=notes)

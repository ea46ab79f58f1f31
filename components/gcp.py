"""GCP backend: system and fabric VPCs per site, GPUDirect training clusters, autoscaled regional MIGs.

NIC layouts by machine family (Google's Cluster Toolkit blueprints and the GPU network bandwidth
page, read 2026-11: https://cloud.google.com/compute/docs/gpus/gpu-network-bandwidth,
github.com/GoogleCloudPlatform/cluster-toolkit ``examples/machine-learning/*`` and
``modules/network/{multivpc,gpu-rdma-vpc}``):

* A3 Mega (``a3-megagpu-8g``, GPUDirect-TCPXO): 1 system gVNIC + 8 GPU NICs, each in its own VPC.
* A3 High (``a3-highgpu-8g``, GPUDirect-TCPX): 1 system gVNIC + 4 GPU NICs, each in its own VPC.
* A3 Ultra (``a3-ultragpu-8g``) and A4 (``a4-highgpu-8g``), GPUDirect RDMA over RoCE: 2 gVNIC VPCs +
  one RoCE VPC created with the zone's ``<zone>-vpc-roce`` network profile, 8 subnets, 8 NICs of
  type ``MRDMA``. A4X (``a4x-highgpu-4g``): the same with 4 MRDMA NICs.

``InstanceTemplate.resource_policies`` is a single self link (a string) in pulumi_gcp 10.2.0.
"""

from __future__ import annotations

import ipaddress
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
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
from gpufleet.errors import Issue
from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec

FABRIC_RANGE = "192.168.0.0/16"
"""GPU / RoCE subnets are carved from this range in /22 slots (1,022 nodes each); it must not
overlap the site's own network_cidr, because one VM has NICs in both."""

FABRIC_SUBNET_PREFIX = 22
_SLOTS_TCPXO = 0  # slots 0-7: the A3 Mega GPU VPCs
_SLOTS_TCPX = 8  # slots 8-11: the A3 High GPU VPCs
_SLOT_GVNIC2 = 12  # the second host gVNIC VPC of A3 Ultra / A4
_SLOTS_ROCE = 16  # 16 + 8 * zone index + subnet: the per-zone RoCE VPCs
_MAX_ROCE_ZONES = 6

IMAGE_PROJECT = "ubuntu-os-accelerator-images"
"""Google's accelerator images (NVIDIA driver, MOFED for RoCE): https://cloud.google.com/ai-hypercomputer/docs/software-stack"""

BOOT_DISK_GIB = 500


@dataclass(frozen=True)
class NicLayout:
    """How a machine family attaches its GPU network.

    Attributes:
        fabric: the catalog fabric the layout delivers.
        host_nics: gVNIC NICs on host VPCs (the system VPC, plus a second one on A3 Ultra / A4).
        gpu_nics: GPU-network NICs.
        gpu_nic_type: ``GVNIC`` (TCPX / TCPXO) or ``MRDMA`` (RoCE).
        roce: True: the GPU NICs share one RoCE VPC per zone; False: one VPC per GPU NIC.
        mtu: MTU of the GPU VPCs.
    """

    fabric: str
    host_nics: int
    gpu_nics: int
    gpu_nic_type: str
    roce: bool
    mtu: int


LAYOUTS: dict[str, NicLayout] = {
    "a3-megagpu": NicLayout("gpudirect-tcpxo", 1, 8, "GVNIC", False, 8244),
    "a3-highgpu": NicLayout("gpudirect-tcpx", 1, 4, "GVNIC", False, 8244),
    "a3-ultragpu": NicLayout("rdma", 2, 8, "MRDMA", True, 8896),
    "a4-highgpu": NicLayout("rdma", 2, 8, "MRDMA", True, 8896),
    "a4x-highgpu": NicLayout("rdma", 2, 4, "MRDMA", True, 8896),
}
"""NIC layout by machine family (the machine type without its ``-<n>g`` suffix)."""

_HYPERDISK_ONLY = ("a3-ultragpu", "a4-highgpu", "a4x-highgpu")


def machine_family(machine_type: str) -> str:
    """``a3-ultragpu-8g`` → ``a3-ultragpu``."""
    return "-".join(machine_type.split("-")[:2])


def layout_for(machine_type: str) -> NicLayout | None:
    return LAYOUTS.get(machine_family(machine_type))


def image_family(row: InstanceType) -> tuple[str, str]:
    """(project, family) of the default node image for the machine's GPU generation."""
    if row.gpu in {"GB200", "GB300"}:
        return IMAGE_PROJECT, "ubuntu-accelerator-2404-arm64-with-nvidia-580"
    if row.gpu in {"B200", "B300"}:
        return IMAGE_PROJECT, "ubuntu-accelerator-2404-amd64-with-nvidia-570"
    return IMAGE_PROJECT, "ubuntu-accelerator-2204-amd64-with-nvidia-570"


def _roce_profile(project: str, zone: str) -> str:
    return f"projects/{project}/global/networkProfiles/{zone}-vpc-roce"


def _fabric_subnet(slot: int) -> str:
    return carve(FABRIC_RANGE, FABRIC_SUBNET_PREFIX, slot)


@register("gcp")
class GcpBackend(CloudBackend):
    """Compute Engine: VPCs, compact placement policies, instance templates, MIGs, autoscalers."""

    fabrics = frozenset({"gpudirect-tcpx", "gpudirect-tcpxo", "rdma"})
    capacity_types = frozenset({"on_demand", "reservation"})

    # checks ------------------------------------------------------------------------------------------

    def check_site(self, site: SiteSpec, pools: Sequence[PoolPlan], loc: str) -> list[Issue]:
        issues: list[Issue] = []
        if not site.project:
            issues.append(Issue(f"{loc}.project", "a GCP site needs its project (the provider's project, and the "
                                "RoCE network profile path)", "the project id, e.g. my-training-project"))
        fabric_pools = [p for p in pools if p.role == "training" and layout_for(p.instance_type) is not None]
        if fabric_pools and ipaddress.ip_network(site.network_cidr).overlaps(ipaddress.ip_network(FABRIC_RANGE)):
            issues.append(Issue(f"{loc}.network_cidr",
                                f"{site.network_cidr} overlaps {FABRIC_RANGE}, where gpufleet puts the GPU / RoCE "
                                "subnets of this site's training clusters", "a range outside 192.168.0.0/16"))
        roce_zones = sorted({p.zones[0] for p in fabric_pools if (lay := layout_for(p.instance_type)) and lay.roce
                             and p.zones and p.zones[0] in site.zones})
        late = [z for z in roce_zones if site.zones.index(z) >= _MAX_ROCE_ZONES]
        if late:
            issues.append(Issue(f"{loc}.zones", f"RoCE clusters in zone(s) {', '.join(late)}: only the first "
                                f"{_MAX_ROCE_ZONES} zones of a site get RoCE address slots",
                                "list those zones earlier in the site's zones"))
        return issues

    def check_pool(self, pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
        if pool.role != "training" or row.fabric == "none":
            return []
        layout = layout_for(row.instance_type)
        if layout is None:
            return [Issue(f"{loc}.instance_types",
                          f"{row.instance_type} has fabric {row.fabric!r} but gpufleet knows no NIC layout for the "
                          f"{machine_family(row.instance_type)} family",
                          ", ".join(f"{family}-*" for family in sorted(LAYOUTS)))]
        if layout.fabric != row.fabric:
            return [Issue(f"{loc}.instance_types",
                          f"the catalog gives {row.instance_type} fabric {row.fabric!r} but its family's NIC layout "
                          f"delivers {layout.fabric!r}", "fix the catalog row")]
        return []

    def check_image(self, image: str, loc: str) -> list[Issue]:
        if "/global/images/" in image or image.count("/") == 1:
            return []
        return [Issue(loc, f"GCP image {image!r} is neither <project>/<family> nor an image self link",
                      f"{IMAGE_PROJECT}/ubuntu-accelerator-2204-amd64-with-nvidia-570, or "
                      "projects/<project>/global/images/<image>")]

    def fabric_interfaces(self, pool: PoolPlan, row: InstanceType) -> int:
        layout = layout_for(row.instance_type)
        return layout.gpu_nics if layout is not None and row.fabric != "none" else 0

    # building ----------------------------------------------------------------------------------------

    def provider(self, site: SiteSpec) -> pulumi.ProviderResource:
        return gcp.Provider(f"{site.name}-provider", project=site.project, region=site.region)

    def build_network(self, owner: Any, args: SiteNetworkArgs) -> NetworkBuild:
        site = args.site
        name = owner.pulumi_resource_name
        prefix = ipaddress.ip_network(site.network_cidr).prefixlen + 1
        system = gcp.compute.Network(f"{name}-net", auto_create_subnetworks=False, mtu=8896,
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
        for kind, count, first in (("tcpxo", 8, _SLOTS_TCPXO), ("tcpx", 4, _SLOTS_TCPX)):
            fabric = "gpudirect-" + kind
            if any(lay is not None and lay.fabric == fabric for lay in layouts):
                handles[kind] = [
                    self._gpu_vpc(owner, f"{name}-{kind}-{k}", _fabric_subnet(first + k), site.region, 8244)
                    for k in range(count)
                ]
        if roce_zones:
            handles["gvnic2"] = self._gpu_vpc(owner, f"{name}-gvnic2", _fabric_subnet(_SLOT_GVNIC2), site.region, 8896)
            handles["roce"] = {}
            for zone in roce_zones:
                zi = site.zones.index(zone)
                roce = gcp.compute.Network(
                    f"{name}-roce-{zone}", auto_create_subnetworks=False, mtu=8896,
                    network_profile=_roce_profile(str(site.project), zone), opts=child(owner))
                subnets = [
                    gcp.compute.Subnetwork(f"{name}-roce-{zone}-{j}", network=roce.id, region=site.region,
                                           ip_cidr_range=_fabric_subnet(_SLOTS_ROCE + 8 * zi + j), opts=child(owner))
                    for j in range(8)
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
        if override and "/global/images/" in override:
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
        disk_type = "hyperdisk-balanced" if machine_family(row.instance_type) in _HYPERDISK_ONLY else "pd-balanced"
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
                vpcs = handles["tcpxo" if layout.fabric == "gpudirect-tcpxo" else "tcpx"]
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

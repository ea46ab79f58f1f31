"""Azure backend: resource group + VNet per site, InfiniBand scale sets, autoscaled inference scale sets.

What Azure offers and refuses (InfiniBand islands and the RDMA address range, capacity types and
reservations, the SSH-key requirement, image forms, the default image per family, the metric path,
the default resource group) is in :mod:`gpufleet.clouds.azure.profile`; this module builds it: one
single-placement-group scale set per InfiniBand island of the plan, zonal stacks where the site's
pools need outbound access (per zone a NAT gateway, its public IP and a subnet for that zone's VMs,
:func:`gpufleet.clouds.azure.profile.node_subnets`; a serving pool then gets one scale set per zone),
and for each inference scale set a system-assigned identity allowed to publish the scaling metric
about itself.

Spot above the on-demand floor (``PoolPlan.spot_nodes``) is a second scale set beside the regular
one, ``priority: Spot`` with eviction policy ``Delete`` (an evicted VM's disks go with it, so it costs
nothing more) and ``billingProfile.maxPrice: -1`` (evicted only for capacity, never for price), with its
own autoscale setting from 0 to the spot nodes: https://learn.microsoft.com/en-us/azure/virtual-machine-scale-sets/use-spot.
Not the Spot Priority Mix of one scale set: Azure documents it for Flexible orchestration only
(https://learn.microsoft.com/en-us/azure/virtual-machine-scale-sets/spot-priority-mix), and the
inference scale sets here are Uniform.

The spot set's autoscale setting scales on the regular set's tokens/s per VM (its rules'
``metricResourceUri``), since a spot set at 0 VMs posts no metric of its own. Where the plan leaves no
on-demand floor (an all-spot pool, ``PoolPlan.on_demand_nodes`` 0, or a zone whose share of the floor
is 0) there is no regular set to read: the spot set is built alone, its autoscale setting reads the set
itself, and its minimum and default keep at least one VM posting the metric. The default is also the
count autoscale sets when it has no metric to evaluate and the set runs fewer VMs (every VM evicted):
https://learn.microsoft.com/en-us/dotnet/api/microsoft.azure.management.monitor.models.scalecapacity.
"""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import pulumi_azure_native as azure

from components.base import CloudBackend, ClusterBuild, InferencePoolArgs, NetworkBuild, PoolBuild
from components.base import SiteNetworkArgs, TrainingClusterArgs, TrainingTarget, child, register
from gpufleet.clouds.azure.profile import (
    METRICS_TOKEN_AUDIENCE,
    default_image,
    is_image_id,
    metrics_ingestion_url,
    node_subnets,
    resource_group,
    role_definition_id,
    zonal_stacks,
    zone_bounds,
)
from gpufleet.names import TAG_SITE
from gpufleet.spec import SiteSpec

ADMIN_USER = "azureuser"
OS_DISK_GIB = 256
NAT_IDLE_TIMEOUT_MINUTES = 4


def _image(instance_type: str, override: str | None) -> tuple[azure.compute.ImageReferenceArgs, str | None]:
    """The image reference, and the base64 cloud-init of the family's default image (None for overrides)."""
    if override and is_image_id(override):
        return azure.compute.ImageReferenceArgs(id=override), None
    if override:
        publisher, offer, sku, version = override.split(":")
        return azure.compute.ImageReferenceArgs(publisher=publisher, offer=offer, sku=sku, version=version), None
    image = default_image(instance_type)
    custom_data = base64.b64encode(image.cloud_init.encode()).decode() if image.cloud_init else None
    return (azure.compute.ImageReferenceArgs(publisher=image.publisher, offer=image.offer, sku=image.sku,
                                             version=image.version), custom_data)


def _computer_name_prefix(name: str) -> str:
    """Host name prefix: letters, digits and '-', at most 50 characters (Azure appends 6)."""
    return name[:50].rstrip("-")


SPOT_MAX_PRICE = -1.0
"""Pay up to the on-demand price: a spot VM is then evicted for capacity only, never for price."""


def _vm_profile(name: str, instance_type: str, subnet_id: pulumi.Input[str], image: str | None,
                ssh_public_key: str, capacity_reservation_group: str | None = None, spot: bool = False
                ) -> azure.compute.VirtualMachineScaleSetVMProfileArgs:
    image_reference, custom_data = _image(instance_type, image)
    return azure.compute.VirtualMachineScaleSetVMProfileArgs(
        priority=azure.compute.VirtualMachinePriorityTypes.SPOT if spot else None,
        eviction_policy=azure.compute.VirtualMachineEvictionPolicyTypes.DELETE if spot else None,
        billing_profile=azure.compute.BillingProfileArgs(max_price=SPOT_MAX_PRICE) if spot else None,
        os_profile=azure.compute.VirtualMachineScaleSetOSProfileArgs(
            computer_name_prefix=_computer_name_prefix(name),
            admin_username=ADMIN_USER,
            custom_data=custom_data,
            linux_configuration=azure.compute.LinuxConfigurationArgs(
                disable_password_authentication=True,
                ssh=azure.compute.SshConfigurationArgs(public_keys=[azure.compute.SshPublicKeyArgs(
                    path=f"/home/{ADMIN_USER}/.ssh/authorized_keys", key_data=ssh_public_key)]),
            ),
        ),
        storage_profile=azure.compute.VirtualMachineScaleSetStorageProfileArgs(
            image_reference=image_reference,
            os_disk=azure.compute.VirtualMachineScaleSetOSDiskArgs(
                create_option="FromImage", caching=azure.compute.CachingTypes.READ_WRITE, disk_size_gb=OS_DISK_GIB,
                managed_disk=azure.compute.VirtualMachineScaleSetManagedDiskParametersArgs(
                    storage_account_type="Premium_LRS")),
        ),
        # One private NIC, no public IP configuration: nodes are reachable only inside the VNet.
        network_profile=azure.compute.VirtualMachineScaleSetNetworkProfileArgs(
            network_interface_configurations=[azure.compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                name="primary", primary=True, enable_accelerated_networking=True,
                ip_configurations=[azure.compute.VirtualMachineScaleSetIPConfigurationArgs(
                    name="primary", primary=True, subnet=azure.compute.ApiEntityReferenceArgs(id=subnet_id))],
            )],
        ),
        capacity_reservation=None if capacity_reservation_group is None else azure.compute.CapacityReservationProfileArgs(
            capacity_reservation_group=azure.compute.SubResourceArgs(id=capacity_reservation_group)),
    )


@register("azure")
class AzureBackend(CloudBackend):
    """Azure: resource group, VNet, proximity placement groups, VM scale sets, autoscale settings."""

    def provider(self, site: SiteSpec) -> pulumi.ProviderResource:
        extra: dict[str, Any] = {}
        if site.subscription_id:
            extra["subscription_id"] = site.subscription_id
        return azure.Provider(f"{site.name}-provider", location=site.region, **extra)

    def build_network(self, owner: Any, args: SiteNetworkArgs) -> NetworkBuild:
        site = args.site
        name = owner.pulumi_resource_name
        tags = {TAG_SITE: site.name}
        group = azure.resources.ResourceGroup(
            f"{name}-rg", resource_group_name=resource_group(site),
            location=site.region, tags=tags, opts=child(owner))
        vnet = azure.network.VirtualNetwork(
            f"{name}-vnet", resource_group_name=group.name, location=site.region,
            address_space=azure.network.AddressSpaceArgs(address_prefixes=[site.network_cidr]),
            tags=tags, opts=child(owner))
        handles: dict[str, Any] = {"resource_group": group, "vnet": vnet}
        subnets: dict[str, pulumi.Input[str]] = {}
        zonal = zonal_stacks(args.pools)
        by_cidr: dict[str, azure.network.Subnet] = {}
        for zone, cidr in node_subnets(site, args.pools, zonal=zonal).items():
            if cidr in by_cidr:  # one regional subnet serves every zone
                subnets[zone] = by_cidr[cidr].id
                continue
            nat = self._zonal_nat(owner, f"{name}-egress-{zone}", group, site, zone, tags) if zonal else None
            subnet = azure.network.Subnet(
                f"{name}-nodes-{zone}" if zonal else f"{name}-nodes", resource_group_name=group.name,
                virtual_network_name=vnet.name, address_prefix=cidr,
                # A private subnet: no implicit outbound IPs; outbound goes through its zone's NAT gateway, if any.
                default_outbound_access=False,
                nat_gateway=None if nat is None else azure.network.SubResourceArgs(id=nat.id),
                opts=child(owner))
            by_cidr[cidr] = subnet
            subnets[zone] = subnet.id
        handles["subnet"] = next(iter(by_cidr.values()))
        handles["zonal_stacks"] = zonal
        return NetworkBuild(network_id=vnet.id, subnet_ids=subnets, handles=handles)

    @staticmethod
    def _zonal_nat(owner: Any, name: str, group: azure.resources.ResourceGroup, site: SiteSpec, zone: str,
                   tags: dict[str, str]) -> azure.network.NatGateway:
        """One zone's NAT gateway and its static Standard IP, both in that zone (a zonal NAT gateway
        takes IPs of its own zone only)."""
        ip = azure.network.PublicIPAddress(
            f"{name}-ip", resource_group_name=group.name, location=site.region, zones=[zone],
            sku=azure.network.PublicIPAddressSkuArgs(name="Standard", tier="Regional"),
            public_ip_allocation_method=azure.network.IPAllocationMethod.STATIC, public_ip_address_version="IPv4",
            tags=tags, opts=child(owner))
        return azure.network.NatGateway(
            name, resource_group_name=group.name, location=site.region, zones=[zone],
            sku=azure.network.NatGatewaySkuArgs(name=azure.network.NatGatewaySkuName.STANDARD),
            public_ip_addresses=[azure.network.SubResourceArgs(id=ip.id)],
            idle_timeout_in_minutes=NAT_IDLE_TIMEOUT_MINUTES, tags=tags, opts=child(owner))

    def build_training(self, owner: Any, args: TrainingClusterArgs) -> ClusterBuild:
        pool, row, name, zone = TrainingTarget.of(owner, args)
        group = args.network.handles["resource_group"]
        infiniband = self.profile.fabric_interfaces(row) > 0
        placement_ids: list[pulumi.Input[str]] = []
        ppg = None
        if pool.placement_group:
            ppg = azure.compute.ProximityPlacementGroup(
                f"{name}-ppg", resource_group_name=group.name, location=pool.region,
                proximity_placement_group_type="Standard",
                intent=azure.compute.ProximityPlacementGroupPropertiesIntentArgs(vm_sizes=[row.instance_type]),
                zones=[zone], tags=pool.tags, opts=child(owner))
            placement_ids.append(ppg.id)
        reservation = pool.reservation_id if pool.capacity_type == "reservation" else None
        if reservation:
            placement_ids.append(reservation)
        scale_sets: list[pulumi.Input[str]] = []
        for index, vms in enumerate(pool.islands):
            island = f"{name}-ib{index}"
            # One scale set per InfiniBand island: IB links only VMs of one single placement group
            # (a size without InfiniBand needs none, and capacity reservations refuse one).
            vmss = azure.compute.VirtualMachineScaleSet(
                island,
                resource_group_name=group.name,
                location=pool.region,
                orchestration_mode=azure.compute.OrchestrationMode.UNIFORM,
                sku=azure.compute.SkuArgs(name=row.instance_type, tier="Standard", capacity=vms),
                single_placement_group=infiniband,
                overprovision=False,
                platform_fault_domain_count=1,
                zones=[zone],
                proximity_placement_group=None if ppg is None else azure.compute.SubResourceArgs(id=ppg.id),
                upgrade_policy=azure.compute.UpgradePolicyArgs(mode=azure.compute.UpgradeMode.MANUAL),
                virtual_machine_profile=_vm_profile(island, row.instance_type, args.network.subnet_ids[zone],
                                                    args.image, args.ssh_public_key or "", reservation),
                tags=pool.tags,
                opts=child(owner),
            )
            scale_sets.append(vmss.id)
        # InfiniBand comes up on every HCA of the size inside a single placement group.
        return ClusterBuild(node_group_ids=scale_sets, placement_ids=placement_ids,
                            fabric_interfaces_attached=self.profile.fabric_interfaces(row))

    def _serving_scale_set(self, owner: Any, name: str, args: InferencePoolArgs, minimum: int, maximum: int,
                           *, spot: bool = False, metric_of: azure.compute.VirtualMachineScaleSet | None = None,
                           zones: list[str] | None = None,
                           ) -> tuple[azure.compute.VirtualMachineScaleSet, azure.monitor.AutoscaleSetting]:
        """A Uniform serving scale set of ``args.pool``'s type from ``minimum`` to ``maximum`` VMs in
        ``zones`` (default: the pool's), its identity allowed to publish the metric about it, and its
        autoscale setting on the tokens/s per VM of ``metric_of`` (default: the set itself). ``spot``:
        the set is Spot priority.

        A set that may stand at 0 VMs grows by a count of VMs, not by a percentage: a percentage of 0
        VMs is 0, and Azure's ``PercentChangeCount`` is not documented to round a step from 0 up."""
        pool = args.pool
        group = args.network.handles["resource_group"]
        zones = list(zones or pool.zones)
        vmss = azure.compute.VirtualMachineScaleSet(
            f"{name}-vmss",
            resource_group_name=group.name,
            location=pool.region,
            orchestration_mode=azure.compute.OrchestrationMode.UNIFORM,
            sku=azure.compute.SkuArgs(name=pool.instance_type, tier="Standard", capacity=minimum),
            # Serving needs no InfiniBand; several placement groups let the set grow past 100 VMs.
            single_placement_group=False,
            overprovision=False,
            zones=zones,
            zone_balance=True if len(zones) > 1 else None,
            upgrade_policy=azure.compute.UpgradePolicyArgs(mode=azure.compute.UpgradeMode.MANUAL),
            # The serving process gets its Azure Monitor token from this identity (IMDS, no secret).
            identity=azure.compute.VirtualMachineScaleSetIdentityArgs(
                type=azure.compute.ResourceIdentityType.SYSTEM_ASSIGNED),
            virtual_machine_profile=_vm_profile(name, pool.instance_type, args.network.subnet_ids[zones[0]],
                                                args.image, args.ssh_public_key or "", spot=spot),
            tags=pool.tags,
            opts=child(owner, ignore_changes=["sku.capacity"]),
        )
        # Monitoring Metrics Publisher on the scale set itself: the identity may post metrics about
        # this scale set and nothing else.
        publisher = azure.authorization.RoleAssignment(
            f"{name}-metrics-publisher",
            principal_id=vmss.identity.apply(lambda identity: identity.principal_id if identity else None),
            principal_type=azure.authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=vmss.id.apply(role_definition_id),
            scope=vmss.id,
            description=f"{pool.name}: VMs publish {pool.scaling_metric_namespace}/{pool.scaling_metric_name} "
                        "for the autoscale setting",
            opts=child(owner),
        )
        target = pool.scaling_target_per_node

        def trigger(operator: azure.monitor.ComparisonOperationType, threshold: float) -> azure.monitor.MetricTriggerArgs:
            return azure.monitor.MetricTriggerArgs(
                metric_name=pool.scaling_metric_name, metric_namespace=pool.scaling_metric_namespace,
                metric_resource_uri=(metric_of or vmss).id, operator=operator, threshold=threshold,
                statistic=azure.monitor.MetricStatisticType.AVERAGE,
                time_aggregation=azure.monitor.TimeAggregationType.AVERAGE, time_grain="PT1M", time_window="PT5M",
                # Each VM posts its own tokens/s; the average over the posts is already per instance.
                divide_per_instance=False)

        setting = azure.monitor.AutoscaleSetting(
            f"{name}-autoscale",
            resource_group_name=group.name,
            location=pool.region,
            target_resource_uri=vmss.id,
            enabled=True,
            profiles=[azure.monitor.AutoscaleProfileArgs(
                name="tokens-per-node",
                capacity=azure.monitor.ScaleCapacityArgs(
                    minimum=str(minimum), maximum=str(maximum), default=str(minimum)),
                rules=[
                    azure.monitor.ScaleRuleArgs(
                        metric_trigger=trigger(azure.monitor.ComparisonOperationType.GREATER_THAN, target),
                        scale_action=azure.monitor.ScaleActionArgs(
                            direction=azure.monitor.ScaleDirection.INCREASE,
                            type=azure.monitor.ScaleType.PERCENT_CHANGE_COUNT, value="20", cooldown="PT5M")
                        if minimum else azure.monitor.ScaleActionArgs(
                            direction=azure.monitor.ScaleDirection.INCREASE,
                            type=azure.monitor.ScaleType.CHANGE_COUNT, value=str(max(1, round(maximum * 0.2))),
                            cooldown="PT5M")),
                    azure.monitor.ScaleRuleArgs(
                        metric_trigger=trigger(azure.monitor.ComparisonOperationType.LESS_THAN, round(target * 0.6, 6)),
                        scale_action=azure.monitor.ScaleActionArgs(
                            direction=azure.monitor.ScaleDirection.DECREASE,
                            type=azure.monitor.ScaleType.CHANGE_COUNT, value="1", cooldown="PT10M")),
                ],
            )],
            tags=pool.tags,
            opts=child(owner, depends_on=[publisher]),
        )
        return vmss, setting

    def build_inference(self, owner: Any, args: InferencePoolArgs) -> PoolBuild:
        pool = args.pool
        name = owner.pulumi_resource_name
        on_demand = pool.on_demand_nodes
        # With zonal stacks a subnet holds one zone's VMs: one scale set per zone, each bounded by its
        # zone's share of the plan (nodes_by_zone), so no zone's egress hangs on another zone.
        stacks = [[z] for z in pool.zones] if args.network.handles.get("zonal_stacks") and len(pool.zones) > 1 \
            else [list(pool.zones)]
        caps = {"+".join(zs): sum(pool.nodes_by_zone.get(z, 0) for z in zs) or pool.nodes for zs in stacks}
        planned_spot = {"+".join(zs): sum(pool.spot_nodes_by_zone.get(z, 0) for z in zs) for zs in stacks}
        if pool.spot_nodes and sum(planned_spot.values()) == pool.spot_nodes and all(
                planned_spot[k] <= caps[k] for k in caps):
            # The plan's own split of spot and on-demand per zone: the one its loss figures count.
            spot_max = planned_spot
            od_max = {k: caps[k] - spot_max[k] for k in caps}
        else:
            od_max = zone_bounds(on_demand, caps)
            spot_max = {k: caps[k] - od_max[k] for k in caps} if pool.spot_nodes else dict.fromkeys(caps, 0)
        od_min = zone_bounds(min(pool.min_nodes, on_demand), od_max)
        spot_min = zone_bounds(max(pool.min_nodes - on_demand, 0), spot_max)
        built: list[tuple[azure.compute.VirtualMachineScaleSet, azure.monitor.AutoscaleSetting]] = []
        first: dict[str, str] = {}  # each stack's first set, named in the notes
        alone: list[str] = []  # stacks with no on-demand share: their spot set stands alone
        # A set at 0 VMs posts no metric, so a zone whose share of the minimum is 0 scales on the
        # tokens/s per VM of a zone set that always runs VMs (the anchor, built first), as its spot set does.
        anchor = next((k for k in caps if od_min[k]), None)
        posting: azure.compute.VirtualMachineScaleSet | None = None
        for zones in sorted(stacks, key=lambda zs: "+".join(zs) != anchor):
            key = "+".join(zones)
            stem = name if len(stacks) == 1 else f"{name}-z{key}"
            if od_max[key]:
                vmss, setting = self._serving_scale_set(owner, stem, args, od_min[key], od_max[key], zones=zones,
                                                        metric_of=None if od_min[key] else posting)
                if key == anchor:
                    posting = vmss
                built.append((vmss, setting))
                first[key] = f"{stem}-vmss"
                if spot_max[key]:
                    self._serving_scale_set(owner, f"{stem}-spot", args, spot_min[key], spot_max[key], spot=True,
                                            metric_of=vmss if od_min[key] else posting, zones=zones)
            else:
                # No on-demand set to read: the spot set scales on its own VMs' metric, and keeps one VM
                # running to post it (a set at 0 VMs posts none).
                built.append(self._serving_scale_set(owner, f"{stem}-spot", args, max(spot_min[key], 1),
                                                     spot_max[key], spot=True, zones=zones))
                first[key] = f"{stem}-spot-vmss"
                alone.append(key)
        sets = "one scale set" if len(stacks) == 1 else \
            f"one scale set per zone ({', '.join(f'{first[z[0]]}: {caps[z[0]]} VMs at most' for z in stacks)})"
        if not pool.spot_nodes:
            spot_notes: list[str] = []
        elif not on_demand:
            spot_notes = [f"{pool.spot_nodes} spot VMs in a Spot scale set {'per zone ' if len(stacks) > 1 else ''}"
                          "(<set>-spot-vmss, Spot priority, evicted VMs deleted, max price -1) and no on-demand set "
                          "(the plan's on-demand floor is 0); each scales on its own VMs' tokens/s and keeps at least "
                          "one VM running to post it"]
        else:
            spot_notes = [f"{pool.spot_nodes} spot VMs in a second scale set per zone (<set>-spot-vmss, Spot priority, "
                          "evicted VMs deleted, max price -1) beside the on-demand floor, scaled on the on-demand set's "
                          "tokens/s per VM" + (f"; in zone {', '.join(alone)}, with no share of the floor, the "
                                               "spot set stands alone, scales on its own VMs' tokens/s and keeps at "
                                               "least one VM running to post it" if alone else "")]
        notes = ["no standby pool: Azure keeps warm capacity as the scale set's minimum (min_nodes running)",
                 f"{sets}; " + ("each zone's VMs reach the internet through that zone's own NAT gateway, so a "
                                "zone's loss takes no other zone's outbound path" if len(stacks) > 1 else
                                "its outbound path is the site's NAT gateway" if args.network.handles.get("zonal_stacks")
                                else "no outbound path is built"),
                 *spot_notes,
                 f"every VM posts {pool.scaling_metric_name} (namespace {pool.scaling_metric_namespace}, its own "
                 f"tokens/s, once a minute) to {metrics_ingestion_url(pool.region, '<scale set id>')} with a "
                 f"token for {METRICS_TOKEN_AUDIENCE} from the scale set's managed identity"]
        vmss, setting = built[0]
        return PoolBuild(node_group_id=vmss.id, autoscaler_id=setting.id, warm_nodes=0, notes=notes)

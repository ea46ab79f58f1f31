"""How the policy pack reads AWS resources: autoscaling groups, launch templates, EFA, placement groups.

========================================  ==========================================================
resource                                  read
========================================  ==========================================================
``aws:autoscaling/group:Group``           minSize, maxSize, desiredCapacity (the node count),
                                          availabilityZones (else one zone per subnet), its launch
                                          templates (by name or id; else all of the pool's),
                                          mixedInstancesPolicy.instancesDistribution
                                          (onDemandBaseCapacity, onDemandPercentageAboveBaseCapacity:
                                          the on-demand part of maxSize, the rest spot)
``aws:ec2/launchTemplate:LaunchTemplate`` instanceType, networkInterfaces[].interfaceType (EFA),
                                          instanceMarketOptions.marketType, placement.groupName,
                                          capacityReservationSpecification.capacityReservationTarget
``aws:ec2/placementGroup:PlacementGroup`` strategy (``cluster``)
``aws:ec2/instance:Instance``             a group of one: availabilityZone, instanceType
``aws:eks/nodeGroup:NodeGroup``           EKS managed node group: scalingConfig.minSize / maxSize /
                                          desiredSize, instanceTypes (the first), one zone per
                                          subnet, its launch template (EFA interfaces, placement,
                                          capacity, as for an autoscaling group)
========================================  ==========================================================

A launch template that targets a capacity reservation and names a placement group the stack does not
create launches into the reservation's own group: a reservation serves only the cluster placement
group it was created in (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/cr-cpg.html), so that
group is taken as given; ``gpufleet preflight`` compares it with the reservation's
``PlacementGroupArn``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gpufleet import clouds
from gpufleet.clouds.aws.kubernetes import EKS_NODE_GROUP
from gpufleet.clouds.aws.profile import ASG, INSTANCE, LAUNCH_TEMPLATE, PLACEMENT_GROUP, AwsProfile
from gpufleet.policy.resources import (
    CloudReader,
    NodeGroup,
    Pool,
    Resource,
    as_int,
    known,
    known_list,
    pick,
    unknown_at,
)

if TYPE_CHECKING:
    from gpufleet.catalog import InstanceType

class AwsReader(CloudReader):
    """Reads EC2 Auto Scaling groups and instances, and checks EFA and cluster placement groups."""

    cloud = AwsProfile.name
    group_types = (ASG, EKS_NODE_GROUP)
    single_node_types = (INSTANCE,)

    def node_group(self, pool: Pool, r: Resource) -> NodeGroup:
        p = r.props
        if r.type == INSTANCE:
            zone = known(pick(p, "availabilityZone"))
            return NodeGroup(resource=r, cloud=self.cloud, min_nodes=1, max_nodes=1, count=1,
                             zones=(zone,) if zone else (), instance_type=known(pick(p, "instanceType")))
        if r.type == EKS_NODE_GROUP:
            return _eks_node_group(self.cloud, pool, r)
        zones = known_list(pick(p, "availabilityZones")) or _subnet_zones(pool, pick(p, "vpcZoneIdentifiers"))
        linked = _linked_templates(p, pool.of_type(LAUNCH_TEMPLATE))
        itype = next((t for t in (known(pick(t.props, "instanceType")) for t in linked) if t), None)
        overrides = pick(pick(pick(p, "mixedInstancesPolicy") or {}, "launchTemplate") or {}, "overrides")
        if itype is None and isinstance(overrides, list) and overrides:
            itype = known(pick(overrides[0], "instanceType"))
        desired = as_int(pick(p, "desiredCapacity"))
        minimum = as_int(pick(p, "minSize"))
        maximum = as_int(pick(p, "maxSize"))
        return NodeGroup(resource=r, cloud=self.cloud, min_nodes=minimum, max_nodes=maximum,
                         count=desired if desired is not None else minimum, zones=zones,
                         instance_type=itype, templates=linked, spot_nodes=_spot_nodes(p, maximum))

    def fabric_problems(self, pool: Pool, row: InstanceType) -> list[str]:
        problems: list[str] = []
        want = clouds.profile(self.cloud).fabric_interfaces(row)
        placement_groups = pool.of_type(PLACEMENT_GROUP)
        for g in pool.groups:
            if not g.templates:
                problems.append(f"node group {g.name} has no launch template to attach EFA interfaces")
                continue
            capacity_block = reserved = False
            pg_refs: list[Any] = [pick(g.resource.props, "placementGroup")]
            # a deciding value unknown until apply: that check is skipped and the rule fails closed on it
            placement_unknown = unknown_at(pool.unknown, g.resource, "placementGroup")
            for t in g.templates:
                placement_unknown |= unknown_at(pool.unknown, t, "instanceMarketOptions.marketType",
                                                "capacityReservationSpecification.capacityReservationTarget"
                                                ".capacityReservationId", "placement.groupName")
                if unknown_at(pool.unknown, t, "networkInterfaces.*.interfaceType"):
                    continue
                nics = [n for n in pick(t.props, "networkInterfaces") or [] if isinstance(n, Mapping)]
                efa = sum(1 for n in nics if str(pick(n, "interfaceType") or "").lower() in ("efa", "efa-only"))
                if efa < want:
                    problems.append(f"launch template {t.name} attaches {efa} of the {want} EFA "
                                    f"interfaces a {row.instance_type} has ({want - efa} missing)")
                market = pick(pick(t.props, "instanceMarketOptions") or {}, "marketType")
                capacity_block = capacity_block or market == "capacity-block"
                target = pick(pick(t.props, "capacityReservationSpecification") or {}, "capacityReservationTarget")
                reserved = reserved or bool(known(pick(target or {}, "capacityReservationId")))
                pg_refs.append(pick(pick(t.props, "placement") or {}, "groupName"))
            for p in placement_groups:
                placement_unknown |= unknown_at(pool.unknown, p, "strategy")
            if capacity_block or placement_unknown:
                continue  # Capacity Blocks are co-located already and refuse a placement group
            problems += _placement_problems(g, [r for r in pg_refs if r], placement_groups, reserved=reserved)
        return problems


def _subnet_zones(pool: Pool, subnets: Any) -> tuple[str, ...]:
    """One zone per subnet: the pool's declared zones when they match in number, else placeholders."""
    if not isinstance(subnets, list) or not subnets:
        return ()
    declared = pool.declared_zones
    return declared if len(declared) == len(subnets) else tuple(f"subnet {i + 1}" for i in range(len(subnets)))


def _eks_node_group(cloud: str, pool: Pool, r: Resource) -> NodeGroup:
    """An EKS managed node group: its scaling config, subnets (one zone each) and launch template."""
    p = r.props
    scaling = pick(p, "scalingConfig") or {}
    zones = _subnet_zones(pool, pick(p, "subnetIds"))
    linked = _linked_templates(p, pool.of_type(LAUNCH_TEMPLATE))
    types = known_list(pick(p, "instanceTypes"))
    itype = types[0] if types else next((t for t in (known(pick(t.props, "instanceType")) for t in linked) if t), None)
    desired = as_int(pick(scaling, "desiredSize"))
    minimum = as_int(pick(scaling, "minSize"))
    return NodeGroup(resource=r, cloud=cloud, min_nodes=minimum, max_nodes=as_int(pick(scaling, "maxSize")),
                     count=desired if desired is not None else minimum, zones=zones, instance_type=itype,
                     templates=linked)


def _placement_problems(g: NodeGroup, refs: list[Any], placement_groups: list[Resource], *,
                        reserved: bool = False) -> list[str]:
    """What is wrong with the cluster placement group a node group launches into (``reserved``: its
    template targets a capacity reservation, whose own group it may name)."""
    if not refs:
        return [f"node group {g.name} launches into no cluster placement group"]
    named_refs = {r for r in refs if known(r)}
    named = [p for p in placement_groups if named_refs & {pick(p.props, "name"), p.name}]
    if not named and reserved and named_refs:
        return []  # the reservation's own group, created with it outside this stack
    named = named or placement_groups
    if not named:
        return [f"node group {g.name} names placement group {', '.join(sorted(named_refs)) or '(unknown)'}, "
                "which this stack does not create"]
    if not any(str(pick(p.props, "strategy") or "").lower() == "cluster" for p in named):
        strategies = ", ".join(f"{p.name}: {pick(p.props, 'strategy')!r}" for p in named)
        return [f"its placement group is not a cluster placement group ({strategies})"]
    return []


def _linked_templates(asg_props: Mapping[str, Any], templates: list[Resource]) -> list[Resource]:
    """The launch templates an ASG launches from: matched by name or id when known, else all of the
    pool's (every one of them must then be complete)."""
    refs: list[Any] = []
    lt = pick(asg_props, "launchTemplate")
    if isinstance(lt, Mapping):
        refs += [pick(lt, "name"), pick(lt, "id")]
    spec = pick(pick(pick(asg_props, "mixedInstancesPolicy") or {}, "launchTemplate") or {}, "launchTemplateSpecification")
    if isinstance(spec, Mapping):
        refs += [pick(spec, "launchTemplateName"), pick(spec, "launchTemplateId")]
    names = {v for v in refs if known(v)}
    matched = [t for t in templates if names & {pick(t.props, "name"), pick(t.props, "namePrefix"), t.name}]
    return matched or list(templates)


ON_DEMAND_DEFAULTS = {"onDemandBaseCapacity": 0, "onDemandPercentageAboveBaseCapacity": 100}
"""EC2 Auto Scaling's defaults for an instances distribution (all on-demand):
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstancesDistribution.html"""


def _spot_nodes(asg_props: Mapping[str, Any], maximum: int | None) -> int | None:
    """Of ``maximum``, the nodes its instances distribution may launch as spot: those above
    ``onDemandBaseCapacity`` beyond ``onDemandPercentageAboveBaseCapacity`` (the on-demand part
    counted down to whole nodes). 0 without a mixed instances policy; None when a value is unknown."""
    policy = pick(asg_props, "mixedInstancesPolicy")
    if policy is None:
        return 0
    distribution = pick(policy, "instancesDistribution") if isinstance(policy, Mapping) else policy
    if distribution is None:
        return 0
    if maximum is None or not isinstance(distribution, Mapping):
        return None
    values = {}
    for key, default in ON_DEMAND_DEFAULTS.items():
        raw = pick(distribution, key)
        values[key] = default if raw is None else as_int(raw)
    base, percent = values["onDemandBaseCapacity"], values["onDemandPercentageAboveBaseCapacity"]
    if base is None or percent is None:
        return None
    above = max(maximum - base, 0)
    on_demand = min(base, maximum) + above * min(max(percent, 0), 100) // 100
    return maximum - on_demand


READER = AwsReader()

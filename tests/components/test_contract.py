"""The contract every cloud backend keeps, checked the same way on AWS, Azure and GCP.

One site network, one training cluster and one inference pool per cloud, built under mocks:
type tokens, parents, name prefixes, the site's explicit provider, tags on GPU-bearing resources,
the pool facts and demand on the components, and the autoscaler bounds on the real resources.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gpufleet.offline import OfflineRun, RecordedResource

CLOUDS = ["aws", "azure", "gcp"]

# Resources that hold or serve GPUs, per cloud, and where their tags live.
GPU_BEARING: dict[str, dict[str, str]] = {
    "aws": {"aws:ec2/launchTemplate:LaunchTemplate": "tags", "aws:autoscaling/group:Group": "tags"},
    "azure": {"azure-native:compute:VirtualMachineScaleSet": "tags"},
    "gcp": {"gcp:compute/instanceTemplate:InstanceTemplate": "labels"},
}

# The autoscaled group and autoscaler of an inference pool: (type, path to min, path to max).
BOUNDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "aws": ("aws:autoscaling/group:Group", ("minSize",), ("maxSize",)),
    "azure": ("azure-native:monitor:AutoscaleSetting", ("profiles", "0", "capacity", "minimum"),
              ("profiles", "0", "capacity", "maximum")),
    "gcp": ("gcp:compute/regionAutoscaler:RegionAutoscaler", ("autoscalingPolicy", "minReplicas"),
            ("autoscalingPolicy", "maxReplicas")),
}


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def _tags(resource: RecordedResource, field: str) -> dict[str, str]:
    raw = resource.inputs.get(field)
    if isinstance(raw, list):  # ASG tags: [{key, value, propagateAtLaunch}]
        assert all(t["propagateAtLaunch"] for t in raw), resource.name
        return {t["key"]: t["value"] for t in raw}
    return dict(raw or {})


@pytest.fixture(params=CLOUDS)
def built(request: pytest.FixtureRequest, site_of: Callable[..., Any], pool_of: Callable[..., Any],
          build: Callable[..., OfflineRun]) -> tuple[str, Any, list[Any], OfflineRun]:
    cloud = request.param
    site = site_of(cloud)
    pools = [pool_of(cloud, "training"), pool_of(cloud, "inference")]
    return cloud, site, pools, build(site, pools)


def test_components_use_gpufleet_type_tokens(built: tuple[str, Any, list[Any], OfflineRun]) -> None:
    _, site, pools, run = built
    components = {r.name: r.type for r in run.resources if r.is_component}
    assert components == {
        site.name: "gpufleet:index:SiteNetwork",
        pools[0].name: "gpufleet:index:TrainingCluster",
        pools[1].name: "gpufleet:index:InferencePool",
    }


def test_every_resource_has_a_parent_and_children_hang_off_a_component(
        built: tuple[str, Any, list[Any], OfflineRun]) -> None:
    _, _, _, run = built
    urns = {r.urn: r for r in run.resources}
    for r in run.resources:
        assert r.parent, f"{r.name} has no parent"
        if r.is_component or r.is_provider:
            assert r.parent == run.stack_urn, r.name
        else:
            parent = urns[r.parent]
            assert parent.is_component, f"{r.name}'s parent {parent.name} is not a component"
            assert r.name.startswith(parent.name + "-"), f"{r.name} is not prefixed with {parent.name}"


def test_every_cloud_resource_uses_the_sites_explicit_provider(built: tuple[str, Any, list[Any], OfflineRun]) -> None:
    _, site, _, run = built
    (provider,) = [r for r in run.resources if r.is_provider]
    assert provider.name == f"{site.name}-provider"
    for r in run.resources:
        if r.custom and not r.is_provider:
            assert r.provider is not None and r.provider.startswith(provider.urn + "::"), r.name


def test_gpu_bearing_resources_carry_the_pool_tags(built: tuple[str, Any, list[Any], OfflineRun]) -> None:
    cloud, _, pools, run = built
    by_name = {p.name: p for p in pools}
    found = 0
    for type_token, field in GPU_BEARING[cloud].items():
        for r in run.of_type(type_token):
            owner = next(name for name in by_name if r.name.startswith(name + "-"))
            tags = _tags(r, field)
            assert by_name[owner].tags.items() <= tags.items(), r.name
            found += 1
    assert found >= 2


def test_components_record_pool_facts_and_demand_in_props_and_outputs(
        built: tuple[str, Any, list[Any], OfflineRun]) -> None:
    _, _, pools, run = built
    for pool in pools:
        props = run.named(pool.name).inputs
        assert props["instance_type"] == pool.instance_type
        assert props["gpus_per_node"] == pool.gpus_per_node
        assert props["min_nodes"] == pool.min_nodes and props["max_nodes"] == pool.nodes
        assert props["zones"] == list(pool.zones) and props["site"] == pool.site
        assert props["node_power_kw"] == pool.node_power_kw and props["pue"] == pool.pue
        assert props["fabric"] == pool.fabric and props["fabric_interfaces"] == pool.fabric_interfaces
        assert props["pool"]["name"] == pool.name and props["pool"]["tags"] == pool.tags
        assert props["demand"] == {"workload": pool.workload}


def test_inference_bounds_on_the_real_resources_equal_the_plan(built: tuple[str, Any, list[Any], OfflineRun]) -> None:
    cloud, _, pools, run = built
    pool = pools[1]
    type_token, low, high = BOUNDS[cloud]
    # one autoscaler (Azure with zonal stacks: one per zone, the plan split over them)
    scalers = [r for r in run.of_type(type_token) if r.name.startswith(pool.name + "-")]
    assert len(scalers) == (len(pool.zones) if cloud == "azure" else 1)
    assert sum(float(_dig(s.inputs, low)) for s in scalers) == pool.min_nodes
    assert sum(float(_dig(s.inputs, high)) for s in scalers) == pool.nodes


def test_autoscaled_group_size_is_left_to_the_autoscaler(built: tuple[str, Any, list[Any], OfflineRun]) -> None:
    _, _, pools, run = built
    ignored = [r for r in run.resources if r.ignore_changes]
    assert len(ignored) == (len(pools[1].zones) if ignored and ignored[0].type.startswith("azure") else 1)
    assert all(r.name.startswith(pools[1].name) for r in ignored)
    assert all(r.ignore_changes[0] in {"desiredCapacity", "sku.capacity", "targetSize"} for r in ignored)


def test_two_builds_register_identical_inputs(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                              build: Callable[..., OfflineRun]) -> None:
    for cloud in CLOUDS:
        pools = [pool_of(cloud, "training"), pool_of(cloud, "inference")]
        first, second = build(site_of(cloud), pools), build(site_of(cloud), pools)
        assert json.dumps(first.inputs_by_urn(), sort_keys=True) == json.dumps(second.inputs_by_urn(), sort_keys=True)

"""GCP flex-start (Dynamic Workload Scheduler) for training: an empty MIG of Flex-start VMs and one
resize request for every node, which the pack counts as the cluster's nodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gpufleet.errors import SpecError
from gpufleet.offline import OfflineRun
from gpufleet.plan import build_plan
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.spec import parse_fleet

Build = Callable[..., OfflineRun]
DAYS = 3.5


def _flex_pool(pool_of: Any) -> Any:
    return pool_of("gcp", "training", nodes=4, capacity_type="flex_start",
                   sizing={"days_at_rounded_size": DAYS})


def test_a_flex_start_cluster_is_an_empty_mig_and_one_resize_request(site_of: Any, pool_of: Any, build: Build) -> None:
    pool = _flex_pool(pool_of)
    run = build(site_of("gcp"), [pool])
    (template,) = run.of_type("gcp:compute/instanceTemplate:InstanceTemplate")
    scheduling = template.inputs["scheduling"]
    assert (scheduling["provisioningModel"], scheduling["automaticRestart"],
            scheduling["instanceTerminationAction"]) == ("FLEX_START", False, "DELETE")
    assert template.inputs["reservationAffinity"] == {"type": "NO_RESERVATION"}
    (mig,) = run.of_type("gcp:compute/instanceGroupManager:InstanceGroupManager")
    assert mig.inputs["targetSize"] == 0 and mig.inputs["waitForInstances"] is False
    assert mig.inputs["instanceLifecyclePolicy"] == {"defaultActionOnFailure": "DO_NOTHING"}
    (request,) = run.of_type("gcp:compute/resizeRequest:ResizeRequest")
    assert request.inputs["resizeBy"] == 4 and request.inputs["zone"] == pool.zones[0]
    assert request.inputs["requestedRunDuration"] == {"seconds": str(int(DAYS * 86_400))}
    assert "not a reservation" in request.inputs["description"]
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=dict(r.inputs), parent=r.parent or None,
                          dependencies=tuple(r.dependencies)) for r in run.resources]
    (read,) = build_inventory(resources).pools.values()
    assert read.count == 4  # the pack counts the requested nodes


def _gcp_fleet(fleet: dict[str, Any], **capacity: Any) -> dict[str, Any]:
    fleet["sites"] = [{"name": "gcp-usc1", "cloud": "gcp", "region": "us-central1", "project": "gpufleet-flex",
                       "zones": ["us-central1-a", "us-central1-b"], "power_mw": 5.0, "network_cidr": "10.30.0.0/16"}]
    fleet["inference"] = []
    fleet["training"][0].update(gpu="H200", instance_types=["a3-ultragpu-8g"], deadline_days=5,
                                capacity={"type": "flex_start", **capacity})
    return fleet


def test_a_flex_start_run_is_planned_on_gcp(fleet: dict[str, Any]) -> None:
    (pool,) = build_plan(parse_fleet(_gcp_fleet(fleet))).pools
    assert pool.capacity_type == "flex_start" and pool.reservation_id is None


def test_a_run_longer_than_seven_days_is_refused(fleet: dict[str, Any]) -> None:
    fleet = _gcp_fleet(fleet)
    fleet["training"][0].update(deadline_days=30, nodes=1, tokens=1e12)
    with pytest.raises(SpecError, match="Flex-start VMs run at most 7 days") as err:
        build_plan(parse_fleet(fleet))
    assert err.value.issues[0].loc.endswith("capacity.type")


def test_flex_start_is_refused_where_the_cloud_has_none(fleet: dict[str, Any]) -> None:
    fleet["training"][0]["capacity"] = {"type": "flex_start", "placement_group": True}
    with pytest.raises(SpecError, match="flex_start"):
        build_plan(parse_fleet(fleet))


def test_flex_start_names_no_reservation(fleet: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match="reservation_id is only valid"):
        parse_fleet(_gcp_fleet(fleet, reservation_id="r-1"))

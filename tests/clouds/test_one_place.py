"""A cloud fact is one entry in its profile: the plan checks, the components and the pack all follow it.

The example is the NIC layout of a machine family gpufleet does not know yet (``a3-edgegpu``, a
GPUDirect-TCPXO family with 8 GPU NICs, run by a workload that starts TCPXO's software itself):
without its entry in ``gpufleet.clouds.gcp.profile.LAYOUTS`` the plan is refused; with it, and nothing
else, the cluster is built with 8 GPU NICs and the policy pack finds its fabric complete.
"""

from __future__ import annotations

import dataclasses

import pytest

from gpufleet import clouds
from gpufleet.catalog import InstanceType, load_catalog
from gpufleet.checks import check_training_fabric
from gpufleet.clouds.gcp.profile import LAYOUTS, NicLayout
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.policy.rules import RULES
from tests.clouds.builders import make_pool, make_site
from tests.components.conftest import deploy

NEW = "a3-edgegpu-8g"
LOC = "fleet.training[0]"


@pytest.fixture
def new_row(monkeypatch: pytest.MonkeyPatch) -> InstanceType:
    """A catalog row for the new machine type (as a catalog update would add it)."""
    row = dataclasses.replace(load_catalog().instances["a3-megagpu-8g"], instance_type=NEW)
    monkeypatch.setitem(load_catalog().instances, NEW, row)
    return row


def test_a_family_without_a_nic_layout_is_refused_by_the_plan_checks(new_row: InstanceType) -> None:
    gcp = clouds.profile("gcp")
    pool = make_pool("gcp", instance_type=NEW, fabric_setup_by_workload=True)
    (unknown,) = gcp.check_pool(pool, new_row, LOC)
    assert unknown.message == (f"{NEW} has fabric 'gpudirect-tcpxo' but gpufleet knows no NIC layout for the "
                               "a3-edgegpu family")
    (short,) = check_training_fabric(pool, new_row, gcp, LOC)
    assert short.message == f"{NEW} lists 8 gpudirect-tcpxo interfaces but the gcp cluster would attach 0"


def test_one_layout_entry_teaches_the_checks_the_components_and_the_pack(
        new_row: InstanceType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAYOUTS, "a3-edgegpu", NicLayout("gpudirect-tcpxo", 1, 8, "GVNIC", False, 8244))
    gcp = clouds.profile("gcp")
    pool = make_pool("gcp", instance_type=NEW, fabric_setup_by_workload=True)
    assert gcp.check_pool(pool, new_row, LOC) == [] and check_training_fabric(pool, new_row, gcp, LOC) == []

    run = deploy(make_site("gcp"), [pool])
    (template,) = run.of_type("gcp:compute/instanceTemplate:InstanceTemplate")
    assert [n["nicType"] for n in template.inputs["networkInterfaces"]] == ["GVNIC"] * 9

    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent)
                 for r in run.resources]
    assert RULES["training-fabric-complete"](build_inventory(resources), {}).findings == []
    # One GPU NIC fewer on the template, and the pack counts against the same layout.
    template.inputs["networkInterfaces"].pop()
    (finding,) = RULES["training-fabric-complete"](build_inventory(resources), {}).findings
    assert f"attaches 7 of the 8 GPU NICs a {NEW} has (1 missing)" in finding.message

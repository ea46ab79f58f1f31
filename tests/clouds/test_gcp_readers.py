"""How the policy pack reads GCP training clusters: a workload policy or a reservation places a MIG,
a COLLOCATED policy with vmCount does not, and a GPUDirect-TCPX(O) fabric counts only where the run
sets its software up (the component records ``pool.fabric_setup_by_workload``)."""

from __future__ import annotations

from gpufleet.offline import OfflineRun
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.policy.rules import check_training_fabric
from tests.clouds.builders import make_pool, make_site
from tests.components.conftest import deploy
from tests.policies.policy_baseline import Stack, baseline

CLUSTER = "posttrain-30b-gcp-usc1"


def _messages(stack: Stack) -> list[str]:
    return [f.message for f in check_training_fabric(build_inventory(stack.policy_resources()), {}).findings]


def _built(run: OfflineRun) -> list[str]:
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent) for r in run.resources]
    return [f.message for f in check_training_fabric(build_inventory(resources), {}).findings]


def test_a_workload_policy_on_the_mig_passes() -> None:
    assert _messages(baseline()) == []


def test_a_collocated_vm_count_policy_on_the_template_is_no_mig_placement() -> None:
    stack = baseline()
    stack.props(f"{CLUSTER}-workload").pop("workloadPolicy")
    stack.props(f"{CLUSTER}-workload")["groupPlacementPolicy"] = {"collocation": "COLLOCATED", "vmCount": 22}
    stack.props(f"{CLUSTER}-template")["resourcePolicies"] = "posttrain-30b-gcp-usc1"
    (msg,) = _messages(stack)
    assert (f"instance template {CLUSTER}-template names placement policy {CLUSTER}-workload with vmCount, which "
            "admits only VMs created together; a MIG's placement is a workload policy") in msg
    assert f"node group {CLUSTER}-mig has no HIGH_THROUGHPUT workload policy" in msg


def test_a_specific_reservation_places_the_mig_itself() -> None:
    stack = Stack(baseline().without(f"{CLUSTER}-workload"))
    stack.props(f"{CLUSTER}-mig").pop("resourcePolicies")
    assert len(_messages(stack)) == 1
    stack.props(f"{CLUSTER}-template")["reservationAffinity"] = {
        "type": "SPECIFIC_RESERVATION",
        "specificReservation": {"key": "compute.googleapis.com/reservation-name", "values": ["a3u"]}}
    assert _messages(stack) == []


def test_built_tcpxo_clusters_fail_unless_the_run_sets_the_fabric_up() -> None:
    site = make_site("gcp")
    pool = make_pool("gcp", "training", instance_type="a3-megagpu-8g", nodes=8)
    (msg,) = _built(deploy(site, [pool], check=False))
    assert msg.startswith(f"{pool.name}: 8-node a3-megagpu-8g training cluster is missing fabric: its fabric is not "
                          "enabled (gpufleet attaches the 8 GPU NICs of a3-megagpu-8g but installs neither "
                          "GPUDirect-TCPXO's receive-data-path manager nor its NCCL plugin")
    assert msg.endswith("and the run does not set fabric_setup_by_workload: true")
    opted = make_pool("gcp", "training", instance_type="a3-megagpu-8g", nodes=8, fabric_setup_by_workload=True)
    assert _built(deploy(site, [opted])) == []
    # The components' A3 Ultra clusters pass as built (workload policy or reservation).
    assert _built(deploy(site, [make_pool("gcp", "training", nodes=8)])) == []
    reserved = make_pool("gcp", "training", nodes=8, capacity_type="reservation", reservation_id="a3u")
    assert _built(deploy(site, [reserved])) == []

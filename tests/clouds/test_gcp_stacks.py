"""GCP refusals and reports from stack files: `gpufleet plan` exits 2 naming field, value and what is
allowed, the program registers no resource, and a fabric gpufleet cannot bring up is reported as not
enabled (0 Gbps) in the plan and the component outputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import SiteNetwork, SiteNetworkArgs, TrainingCluster, TrainingClusterArgs, backend_for
from gpufleet.offline import run_function
from gpufleet.plan import build_plan
from gpufleet.stackfile import load_stack

STACKS = Path(__file__).resolve().parents[1] / "fixtures" / "stacks"
Cli = Callable[..., tuple[int, str, str]]


def _refused_lines(run_cli: Cli, path: Path) -> list[str]:
    code, out, err = run_cli("plan", "--stack", str(path))
    assert code == 2 and out == "", err
    return [line for line in err.splitlines() if line.startswith("  - ")]


def _variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (STACKS / f"Pulumi.{name}.yaml").read_text()
    assert old in text
    stack = tmp_path / f"Pulumi.{name}-variant.yaml"
    stack.write_text(text.replace(old, new))
    return stack


@pytest.mark.parametrize("region", ["us-central1; rm -rf /", "us-central1\\nus-east1", "us-central1\\n", "US-CENTRAL1"])
def test_a_region_with_shell_text_or_a_newline_exits_2_naming_field_and_pattern(
        region: str, run_cli: Cli, tmp_path: Path) -> None:
    stack = _variant(tmp_path, "bad-gcp-region", "us-central1; rm -rf /", region)
    (line,) = _refused_lines(run_cli, stack)
    shown = repr(region.replace("\\n", "\n"))
    assert line == (f"  - fleet.sites[0].region: {shown} is not a GCP region name (pattern ^[a-z]+-[a-z]+[0-9]{{1,2}}$) "
                    "(allowed: a name `gcloud compute regions list` prints, e.g. us-central1)")


def test_a_zone_of_another_region_a_project_name_a_link_local_range_and_a_bad_metric_are_refused(
        run_cli: Cli) -> None:
    lines = _refused_lines(run_cli, STACKS / "Pulumi.bad-gcp-ids.yaml")
    assert lines[0] == ("  - fleet.sites[0].zones[1]: 'us-east1-b' is not a zone of region 'us-central1' "
                        "(pattern ^us-central1-[a-z]$) (allowed: <region>-<letter>, e.g. us-central1-a "
                        "(`gcloud compute zones list`))")
    assert lines[1].startswith("  - fleet.sites[0].project: 'My_Project' is not a GCP project id "
                               "(pattern ^[a-z][a-z0-9-]{4,28}[a-z0-9]$)")
    assert lines[2].startswith("  - fleet.sites[0].network_cidr: 169.254.0.0/16 overlaps 169.254.0.0/16, which GCP "
                               "does not allow in a subnet")
    assert lines[3].startswith("  - fleet.inference[0].scaling.metric_namespace: 'gpufleet/chat-8b' cannot be part "
                               "of a Cloud Monitoring metric type")
    assert len(lines) == 4


@pytest.mark.parametrize(("old", "new", "loc", "text"), [
    ("[us-central1-a, us-east1-b]", "[\"us-central1-a\\n\", us-central1-b]", "zones[0]", "'us-central1-a\\n'"),
    ("project: My_Project", "project: ''", "project", "a GCP site needs its project"),
    ("project: My_Project", "project: 'p; rm -rf /'", "project", "'p; rm -rf /' is not a GCP project id"),
    ("169.254.0.0/16", "127.0.0.0/16", "network_cidr", "127.0.0.0/16 overlaps 127.0.0.0/8"),
])
def test_each_identifier_is_judged_alone(old: str, new: str, loc: str, text: str, run_cli: Cli,
                                         tmp_path: Path) -> None:
    stack = _variant(tmp_path, "bad-gcp-ids", old, new)
    lines = [line for line in _refused_lines(run_cli, stack) if line.startswith(f"  - fleet.sites[0].{loc}:")]
    assert len(lines) == 1 and text in lines[0], lines


def test_a_multi_node_tcpxo_cluster_nobody_sets_up_is_refused(run_cli: Cli) -> None:
    (line,) = _refused_lines(run_cli, STACKS / "Pulumi.bad-gcp-tcpxo.yaml")
    assert line.startswith("  - fleet.training[0].fabric_setup_by_workload: 32-node a3-megagpu-8g cluster "
                           "research-30b-gcp-euw4 would have no GPU fabric: gpufleet attaches the 8 GPU NICs of "
                           "a3-megagpu-8g but installs neither GPUDirect-TCPXO's receive-data-path manager nor its "
                           "NCCL plugin")


def _plan_json(run_cli: Cli, stack: Path) -> dict[str, Any]:
    code, out, err = run_cli("plan", "--stack", str(stack), "--json")
    assert code == 0, err
    (pool,) = json.loads(out)["pools"]
    return dict(pool)


def test_the_plan_reports_a_tcpxo_fabric_the_run_sets_up_and_one_nobody_does(run_cli: Cli, tmp_path: Path) -> None:
    by_run = _plan_json(run_cli, _variant(tmp_path, "bad-gcp-tcpxo", "mfu: 0.4", "mfu: 0.4\n        "
                                          "fabric_setup_by_workload: true"))
    assert (by_run["fabric_enabled"], by_run["fabric_gbps"], by_run["fabric_setup_by_workload"]) == (True, 1600, True)
    assert by_run["notes"][0].startswith("gpudirect-tcpxo is enabled by the run itself (fabric_setup_by_workload)")

    one_node = _variant(tmp_path, "bad-gcp-tcpxo", "mfu: 0.4", "mfu: 0.4\n        nodes: 1")
    alone = _plan_json(run_cli, one_node)
    assert (alone["nodes"], alone["fabric_enabled"], alone["fabric_gbps"]) == (1, False, 0)
    assert alone["notes"] == ["gpudirect-tcpxo is not enabled, so the nodes have 0 of its 1600 Gbps: gpufleet "
                              "attaches the 8 GPU NICs of a3-megagpu-8g but installs neither GPUDirect-TCPXO's "
                              "receive-data-path manager nor its NCCL plugin, so NCCL would run over TCP sockets "
                              "(https://cloud.google.com/compute/docs/gpus/gpudirect)"]
    code, out, _ = run_cli("plan", "--stack", str(one_node))
    assert code == 0 and "Note: research-30b-gcp-euw4: gpudirect-tcpxo is not enabled" in " ".join(out.split())

    # The component builds what the plan says: the NICs, and no bandwidth on them.
    _, spec = load_stack(one_node)
    (pool,) = build_plan(spec, "t").pools
    (site,) = spec.sites
    built: list[TrainingCluster] = []

    def program() -> None:
        network = SiteNetwork(site.name, SiteNetworkArgs(site=site, pools=(pool,)),
                              opts=pulumi.ResourceOptions(providers=[backend_for("gcp").provider(site)]))
        built.append(TrainingCluster(pool.name, TrainingClusterArgs(pool=pool, network=network)))

    run = run_function(program, stack="t")
    (cluster,) = built
    assert (cluster.fabric_interfaces_attached, cluster.fabric_gbps_attached) == (8, 0.0)
    props = run.named(pool.name).inputs
    assert props["fabric_gbps"] == 0 and props["pool"]["fabric_enabled"] is False
    assert props["pool"]["notes"] == list(pool.notes)

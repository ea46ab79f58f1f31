"""The offline runner: the SDK internals it stands on, isolation between runs, config, outputs, errors."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest

from gpufleet.offline import OfflineRun, answer_call, read_stack_config, run_function, run_program

DEV_STACK = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.dev.yaml"


# --- the SDK internals the runner relies on: fail loudly when they change --------------------------


def test_pulumi_sdk_internals_the_runner_relies_on_are_still_there() -> None:
    from pulumi.runtime import mocks, settings, stack
    from pulumi.runtime.proto import resource_pb2

    from importlib.metadata import version

    assert version("pulumi") == "3.272.0", "re-check gpufleet.offline against the new SDK, then update this pin"
    # run_pulumi_func(func) runs func and waits for every outstanding registration.
    assert inspect.iscoroutinefunction(stack.run_pulumi_func)
    assert list(inspect.signature(stack.run_pulumi_func).parameters) == ["func"]
    # set_mocks accepts our own monitor; the monitor's gRPC methods keep their names.
    assert "monitor" in inspect.signature(mocks.set_mocks).parameters
    for method in ("RegisterResource", "RegisterResourceOutputs", "Invoke", "ReadResource"):
        assert callable(getattr(mocks.MockMonitor, method))
    assert list(inspect.signature(mocks.MockMonitor.RegisterResource).parameters) == ["self", "request"]
    # The request fields we record.
    fields = {f.name for f in resource_pb2.RegisterResourceRequest.DESCRIPTOR.fields}
    assert {"type", "name", "parent", "provider", "custom", "ignoreChanges", "protect", "dependencies"} <= fields
    # Stack outputs live on the root stack resource.
    assert callable(settings.get_root_resource)
    assert "outputs" in stack.Stack.__annotations__
    assert callable(pulumi.runtime.Mocks.new_resource) and callable(pulumi.runtime.Mocks.call)


def _toy() -> None:
    class Box(pulumi.ComponentResource):
        def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
            super().__init__("gpufleet:index:Box", name, {"size": 3}, opts)
            provider = pulumi.ProviderResource("aws", f"{name}-provider", {"region": "us-east-1"},
                                               pulumi.ResourceOptions(parent=self))
            pulumi.CustomResource("aws:ec2/vpc:Vpc", f"{name}-vpc", {"cidrBlock": "10.0.0.0/16"},
                                  pulumi.ResourceOptions(parent=self, provider=provider,
                                                         ignore_changes=["tags"]))
            self.register_outputs({"size": 3})

    Box("box")
    config = pulumi.Config("gpufleet")
    pulumi.export("answer", config.require_int("answer"))
    pulumi.export("object", config.require_object("object"))


def test_a_callable_program_registers_every_resource_with_parents_providers_and_options() -> None:
    run = run_function(_toy, stack="toy", config={"answer": 42, "object": {"a": [1, 2]}})
    assert sorted((r.type, r.name) for r in run.resources) == [
        ("aws:ec2/vpc:Vpc", "box-vpc"), ("gpufleet:index:Box", "box"), ("pulumi:providers:aws", "box-provider")]
    assert [r.urn for r in run.resources] == sorted(r.urn for r in run.resources)
    box, vpc = run.named("box"), run.named("box-vpc")
    assert box.parent == run.stack_urn and vpc.parent == box.urn
    assert box.inputs == {"size": 3} and not box.custom
    assert vpc.inputs == {"cidrBlock": "10.0.0.0/16"} and vpc.ignore_changes == ("tags",)
    assert vpc.provider == f"{run.named('box-provider').urn}::box-provider-provider-id"
    assert vpc.id.startswith("vpc-")
    assert run.outputs == {"answer": 42, "object": {"a": [1, 2]}}
    assert run.children(box) == sorted([vpc, run.named("box-provider")], key=lambda r: r.urn)


def _outputs_program() -> None:
    class Pool(pulumi.ComponentResource):
        def __init__(self, name: str, registers: bool) -> None:
            super().__init__("gpufleet:index:Pool", name, {"max_nodes": 99, "secret_prop": "x"})
            sg = pulumi.CustomResource("aws:ec2/securityGroup:SecurityGroup", f"{name}-sg", {"vpcId": "vpc-given"},
                                       pulumi.ResourceOptions(parent=self))
            pulumi.CustomResource("aws:ec2/launchTemplate:LaunchTemplate", f"{name}-lt",
                                  {"vpcSecurityGroupIds": [sg.id], "instanceType": "p5.48xlarge"},
                                  pulumi.ResourceOptions(parent=self))
            if registers:
                self.register_outputs({"max_nodes": 4, "sg_id": sg.id})

    Pool("a", registers=True)
    Pool("b", registers=False)


def test_a_component_sends_what_it_registered_as_outputs_not_its_props() -> None:
    from gpufleet.engine import analyzed_resources

    run = run_function(_outputs_program, preview=False)
    assert run.named("a").inputs == {"max_nodes": 99, "secret_prop": "x"}
    assert run.named("a").outputs == {"max_nodes": 4, "sg_id": run.named("a-sg").id}
    assert run.named("b").outputs is None
    sent = {r.name: r.properties for r in analyzed_resources(run)}
    assert sent["a"] == {"max_nodes": 4, "sg_id": run.named("a-sg").id}
    assert sent["b"] == {}  # registered nothing: the engine has no outputs for it


def test_a_preview_sends_every_computed_value_as_the_engines_unknown() -> None:
    from gpufleet.engine import analyzed_resources
    from gpufleet.names import UNKNOWN_SENTINEL

    run = run_function(_outputs_program, preview=True)
    sg = run.named("a-sg")
    assert "arn" in sg.computed and "vpcId" not in sg.computed
    sent = {r.name: r.properties for r in analyzed_resources(run)}
    assert sent["a-sg"]["arn"] == UNKNOWN_SENTINEL and sent["a-sg"]["vpcId"] == "vpc-given"
    # an input built from another resource's id, and a component output holding it, are unknown too
    assert sent["a-lt"]["vpcSecurityGroupIds"] == [UNKNOWN_SENTINEL]
    assert sent["a-lt"]["instanceType"] == "p5.48xlarge"
    assert sent["a"] == {"max_nodes": 4, "sg_id": UNKNOWN_SENTINEL}
    # an update sends the provider's state, known
    updated = {r.name: r.properties for r in analyzed_resources(run_function(_outputs_program, preview=False))}
    assert updated["a-sg"]["arn"].startswith("arn:aws:ec2:") and updated["a"]["sg_id"].startswith("sg-")


def test_every_shipped_stack_previews_with_its_computed_values_unknown(stack_run: Any) -> None:
    from gpufleet.engine import analyzed_resources
    from gpufleet.names import UNKNOWN_SENTINEL

    for name in ("dev", "prod", "aws-training", "azure-inference", "gcp-a3ultra"):
        run = stack_run(name)
        sent = {r.urn: r.properties for r in analyzed_resources(run)}
        customs = [r for r in run.resources if r.custom and not r.is_provider]
        assert customs and all(r.computed for r in customs), name
        for r in customs:
            assert all(sent[r.urn][k] == UNKNOWN_SENTINEL for k in r.computed), (name, r.name)
        for c in (r for r in run.resources if r.is_component):
            assert c.outputs is not None and sent[c.urn].keys() == c.outputs.keys(), (name, c.name)


def test_runs_are_isolated_from_each_other() -> None:
    first = run_function(_toy, stack="one", config={"answer": 1, "object": {}})
    second = run_function(_toy, stack="two", config={"answer": 2, "object": {}})
    assert first.outputs["answer"] == 1 and second.outputs["answer"] == 2
    assert all(r.urn.startswith("urn:pulumi:two::") for r in second.resources)
    assert len(first.resources) == len(second.resources) == 3
    # Nothing leaks into the caller's context either.
    from pulumi.runtime import settings

    assert settings.get_root_resource() is None


def test_the_runner_works_from_inside_a_running_event_loop() -> None:
    async def caller() -> OfflineRun:
        return run_function(_toy, config={"answer": 7, "object": []})

    assert asyncio.run(caller()).outputs["answer"] == 7


def test_check_false_returns_the_error_and_what_was_registered_before_it() -> None:
    def broken() -> None:
        pulumi.CustomResource("aws:ec2/vpc:Vpc", "before", {"cidrBlock": "10.0.0.0/16"})
        raise RuntimeError("boom")

    run = run_function(broken, check=False)
    assert isinstance(run.error, RuntimeError) and str(run.error) == "boom"
    assert [r.name for r in run.resources] == ["before"]
    with pytest.raises(RuntimeError, match="boom"):
        run_function(broken)


def test_stack_config_is_passed_the_way_the_cli_passes_it(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.cfg.yaml"
    path.write_text(
        "config:\n"
        "  gpufleet:fleet: {sites: [], b: 2}\n"
        "  aws:region: us-east-1\n"
        "  plain: 3\n"
        "  flag: true\n"
        "  gpufleet:secret:\n"
        "    secure: AAABAcipher\n"
    )
    stack, config, notes = read_stack_config(path)
    assert stack == "cfg"
    assert config == {
        "aws:region": "us-east-1",
        "gpufleet:fleet": json.dumps({"b": 2, "sites": []}, sort_keys=True),
        "gpufleet:flag": "true",
        "gpufleet:plain": "3",
    }
    assert notes == ["gpufleet:secret is an encrypted secret; it cannot be decrypted offline and was not set"]


def test_the_program_and_the_project_name_come_from_the_stacks_pulumi_yaml(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: toy\nruntime: python\nmain: app/\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__main__.py").write_text(
        "import pulumi\n"
        "pulumi.export('program', __file__)\n"
        "pulumi.export('answer', pulumi.Config().require_int('answer'))\n")
    (tmp_path / "stacks").mkdir()
    stack = tmp_path / "stacks" / "Pulumi.s.yaml"
    stack.write_text("config:\n  answer: 42\n")  # an unqualified key gets the project's namespace
    run = run_program(stack)  # the working directory is the repository: the stack's own project wins
    assert Path(run.outputs["program"]) == (tmp_path / "app" / "__main__.py").resolve()
    assert run.outputs["answer"] == 42
    assert run.stack_urn == "urn:pulumi:s::toy::pulumi:pulumi:Stack::toy-s"


def test_data_source_answers_are_deterministic() -> None:
    ssm = answer_call("aws:ssm/getParameter:getParameter", {"name": "/p"}, {"region": "us-east-2"})
    assert ssm == answer_call("aws:ssm/getParameter:getParameter", {"name": "/p"}, {"region": "us-east-2"})
    assert ssm["value"].startswith("ami-")
    assert ssm["value"] != answer_call("aws:ssm/getParameter:getParameter", {"name": "/p"}, {"region": "eu-west-1"})["value"]
    image = answer_call("gcp:compute/getImage:getImage", {"family": "f", "project": "p"})
    assert image["selfLink"] == "https://www.googleapis.com/compute/v1/projects/p/global/images/f-v20260101"


def test_each_cloud_answers_for_its_own_type_tokens_and_others_get_plain_ids() -> None:
    from gpufleet.offline.cloud_mocks import mocks_for
    from gpufleet.offline.recorder import computed_state

    for token in ("aws:ec2/vpc:Vpc", "azure-native:network:VirtualNetwork", "gcp:compute/network:Network"):
        cloud = mocks_for(token)
        assert cloud is not None and token.startswith(f"{cloud.PACKAGE}:")
    assert mocks_for("random:index/randomId:RandomId") is None
    assert computed_state("random:index/randomId:RandomId", "r", {"a": 1}, {}) == ("r-id", {"a": 1})
    rg_id, _ = computed_state("azure-native:resources:ResourceGroup", "rg", {"resourceGroupName": "fleet-rg"},
                              {"subscriptionId": "sub"})
    assert rg_id == "/subscriptions/sub/resourceGroups/fleet-rg"
    assert answer_call("random:index/getThing:getThing", {"x": 1}) == {"x": 1}


def test_the_runner_and_the_cloud_mocks_import_no_pulumi_until_a_run() -> None:
    code = ("import sys, gpufleet.offline, gpufleet.offline.cloud_mocks as m\n"
            "m.mocks_for('aws:x')\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('pulumi', 'grpc')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_dev_stack_runs_under_mocks_in_update_mode_too() -> None:
    run = run_program(DEV_STACK, preview=False, check=False)
    # `pulumi up` refuses the offline placeholder key that the dev stack's Azure pool would get.
    assert run.error is not None and "placeholder" in str(run.error) and run.resources == []

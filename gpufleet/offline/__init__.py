"""Run the Pulumi program of a stack offline, under Pulumi's official mocks, and record what it builds.

This module is the edge of the core that may import Pulumi (lazily, inside functions), so
``import gpufleet.offline`` stays cheap and works without the ``pulumi`` extra installed.

:func:`run_program` is what ``gpufleet preview``, the policy-pack tests and the benchmarks build on:

* it reads ``stacks/Pulumi.<stack>.yaml`` and sets every config key the way the Pulumi CLI would
  (objects and lists as JSON text, scalars as text), so the program reads them with
  ``pulumi.Config``;
* it installs a :class:`pulumi.runtime.Mocks` subclass that answers data-source calls
  deterministically (AWS SSM parameters, GCP images, ...) and records every registered resource:
  type, name, URN, parent URN, provider reference and inputs as plain JSON with the camelCase keys
  the engine sees;
* it runs the repository's ``__main__.py`` with :mod:`runpy` inside
  ``pulumi.runtime.stack.run_pulumi_func``, which waits for every outstanding registration;
* every run happens in its own thread, in a fresh :class:`contextvars.Context` with its own event
  loop, so settings, config and the root stack never leak between runs (and a caller that is itself
  running an event loop is not disturbed): tests and a CLI can run many stacks in one process.

:func:`run_function` does the same for a Python callable instead of a program file (component unit
tests). Stacks that set no ``gpufleet:sshPublicKey`` get a placeholder key for the offline run only,
and :attr:`OfflineRun.notes` says so when a resource received it.

Nothing here needs credentials or the network. The API (``run_program``, ``run_function``,
``OfflineRun``, ``RecordedResource``, ``RecordedCall``) is stable; new fields get defaults.

Design choice: ``run_pulumi_func`` and ``MockMonitor.RegisterResource`` are SDK internals (the
public ``@pulumi.runtime.test`` decorator only waits for one output). The SDK version is pinned in
``pyproject.toml`` and ``tests/program/test_offline_runner.py`` fails loudly if either changes shape.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import runpy
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpufleet.errors import Issue, SpecError
from gpufleet.inputs import load_yaml_file
from gpufleet.names import PLACEHOLDER_SSH_PUBLIC_KEY, SSH_KEY_CONFIG

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: where ``Pulumi.yaml``, ``__main__.py`` and ``components/`` live."""

PROGRAM = REPO_ROOT / "__main__.py"


UNKNOWN = "<computed>"
"""Stands for a value a provider would compute (unknown during a preview)."""

__all__ = [
    "PLACEHOLDER_SSH_PUBLIC_KEY",
    "PROGRAM",
    "REPO_ROOT",
    "SSH_KEY_CONFIG",
    "UNKNOWN",
    "OfflineRun",
    "RecordedCall",
    "RecordedResource",
    "answer_call",
    "read_stack_config",
    "run_function",
    "run_program",
]


@dataclass(frozen=True)
class RecordedResource:
    """One resource the program registered, as the engine saw it.

    Attributes:
        type: the type token, e.g. ``aws:ec2/launchTemplate:LaunchTemplate`` or
            ``gpufleet:index:TrainingCluster``.
        name: the logical name.
        urn: the URN the mock engine gave it.
        inputs: the inputs as plain JSON (camelCase keys, numbers as floats, unknown values as
            :data:`UNKNOWN`). For a component resource these are its props.
        parent: URN of the parent resource (the stack's URN for top-level resources).
        provider: the explicit provider reference (``<provider urn>::<id>``), or None.
        custom: True for cloud resources and providers, False for components.
        id: the id the mock assigned ("" for components).
        ignore_changes: the ``ignore_changes`` resource option, as the engine receives it.
        protect: the ``protect`` resource option.
        dependencies: URNs the resource depends on (explicit ``depends_on`` and input references).
    """

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str | None
    provider: str | None
    custom: bool
    id: str
    ignore_changes: tuple[str, ...] = ()
    protect: bool = False
    dependencies: tuple[str, ...] = ()

    @property
    def is_component(self) -> bool:
        return not self.custom

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")


@dataclass(frozen=True)
class RecordedCall:
    """One data-source call (invoke) the program made, and the mock's answer."""

    token: str
    args: dict[str, Any]
    result: dict[str, Any]


@dataclass
class OfflineRun:
    """The outcome of one offline run of the program.

    Attributes:
        stack: the stack name (from the file name ``Pulumi.<stack>.yaml``).
        resources: every registered resource, sorted by URN (the stack resource excluded).
        outputs: the stack outputs, resolved to plain values.
        seconds: wall-clock time of the program run (config parsing excluded).
        project: the project name the URNs carry.
        preview: whether the run was a preview (``pulumi preview``) or an update (``pulumi up``).
        calls: the data-source calls the program made, in order.
        notes: things the reader must know about this run (e.g. a placeholder SSH key was used).
        error: the exception the program raised, when run with ``check=False``.
    """

    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    seconds: float
    project: str = "gpufleet"
    preview: bool = True
    calls: list[RecordedCall] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def stack_urn(self) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::pulumi:pulumi:Stack::{self.project}-{self.stack}"

    def of_type(self, type_token: str) -> list[RecordedResource]:
        """Resources of one type token, in URN order."""
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> RecordedResource:
        """The resource with this logical name (raises KeyError when absent or ambiguous)."""
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}")
        return found[0]

    def children(self, parent: RecordedResource | str) -> list[RecordedResource]:
        """Direct children of a resource (or of a URN)."""
        urn = parent if isinstance(parent, str) else parent.urn
        return [r for r in self.resources if r.parent == urn]

    def descendants(self, parent: RecordedResource | str) -> list[RecordedResource]:
        """Children, grandchildren, ... of a resource, in URN order."""
        urn = parent if isinstance(parent, str) else parent.urn
        out: list[RecordedResource] = []
        frontier = [urn]
        while frontier:
            kids = [r for r in self.resources if r.parent in frontier]
            out += kids
            frontier = [r.urn for r in kids]
        return sorted(out, key=lambda r: r.urn)

    def inputs_by_urn(self) -> dict[str, dict[str, Any]]:
        """URN → inputs: what two runs must agree on to be deterministic."""
        return {r.urn: r.inputs for r in self.resources}

    def counts_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            counts[r.type] = counts.get(r.type, 0) + 1
        return dict(sorted(counts.items()))


def read_stack_config(stack_file: str | Path, project: str = "gpufleet") -> tuple[str, dict[str, str], list[str]]:
    """Read a stack file's ``config:`` the way the Pulumi CLI passes it to a program.

    Returns:
        The stack name, the config map (fully qualified ``namespace:key`` → text; objects and
        lists as JSON), and notes about keys that could not be passed (encrypted secrets).

    Raises:
        SpecError: the file is missing, is not YAML, or has no ``config:`` mapping.
    """
    path = Path(stack_file)
    source = str(path)
    doc = load_yaml_file(path, what="stack")  # numbers as Pulumi reads them (7.0e10 is a number)
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise SpecError(Issue("config", "a stack file needs a top-level 'config:' mapping"), source=source)
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml").removesuffix(".yml")
    config: dict[str, str] = {}
    notes: list[str] = []
    for key, value in sorted(doc["config"].items()):
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            notes.append(f"{full} is an encrypted secret; it cannot be decrypted offline and was not set")
            continue
        config[full] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return stack, config, notes


def run_program(
    stack_file: str | Path,
    *,
    project: str = "gpufleet",
    preview: bool = True,
    program: str | Path | None = None,
    check: bool = True,
) -> OfflineRun:
    """Run the Pulumi program on a stack file under mocks and return what it registered.

    Args:
        stack_file: ``stacks/Pulumi.<stack>.yaml`` (the stack name comes from the file name).
        project: the Pulumi project name (``Pulumi.yaml``'s ``name``); URNs carry it.
        preview: run as ``pulumi preview`` (True) or as ``pulumi up`` (False).
        program: the program file; defaults to the repository's ``__main__.py``.
        check: re-raise the program's exception (default). With False the exception is returned
            in :attr:`OfflineRun.error` together with whatever was registered before it.

    Returns:
        An :class:`OfflineRun`. Runs are isolated from each other and from the caller's context.

    Raises:
        SpecError: the stack file cannot be read, or (with ``check``) the program rejected it.
        Exception: whatever else the program raised, when ``check`` is True.
    """
    stack, config, notes = read_stack_config(stack_file, project)
    placeholder = SSH_KEY_CONFIG not in config
    if placeholder:
        config[SSH_KEY_CONFIG] = PLACEHOLDER_SSH_PUBLIC_KEY
    program_path = (Path(program) if program is not None else PROGRAM).resolve()

    def main() -> None:
        runpy.run_path(str(program_path), run_name="__main__")

    run = _in_fresh_thread(_run_isolated, stack, config, project, preview, main, str(program_path.parent))
    if placeholder and any(_mentions(r.inputs, PLACEHOLDER_SSH_PUBLIC_KEY) for r in run.resources):
        notes.append(
            f"{SSH_KEY_CONFIG} is not set: a placeholder key was installed for this offline run only "
            "(`pulumi up` refuses it; set your own key)"
        )
    run.notes[:0] = notes
    if check and run.error is not None:
        raise run.error
    return run


def run_function(
    program: Callable[[], None],
    *,
    stack: str = "test",
    project: str = "gpufleet",
    config: Mapping[str, Any] | None = None,
    preview: bool = True,
    check: bool = True,
) -> OfflineRun:
    """Run a Python callable as a Pulumi program under the same mocks as :func:`run_program`.

    For unit tests of components (build a few resources without a stack file) and for tools that
    assemble a program in code.

    Args:
        program: a zero-argument callable that creates resources (and may ``pulumi.export``).
        stack: the stack name URNs carry.
        project: the project name URNs carry.
        config: config values; keys without a namespace get ``<project>:``; values that are not
            strings are passed as JSON, as the Pulumi CLI does.
        preview: run as a preview (True) or an update (False).
        check: re-raise the program's exception (default), or return it in :attr:`OfflineRun.error`.
    """
    values: dict[str, str] = {}
    for key, value in sorted((config or {}).items()):
        full = key if ":" in key else f"{project}:{key}"
        values[full] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    run = _in_fresh_thread(_run_isolated, stack, values, project, preview, program, None)
    if check and run.error is not None:
        raise run.error
    return run


def _mentions(value: Any, text: str) -> bool:
    if isinstance(value, str):
        return text in value
    if isinstance(value, dict):
        return any(_mentions(v, text) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, text) for v in value)
    return False


# --- the mocks ---------------------------------------------------------------------------------------


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def _plain(value: Any) -> Any:
    """Deserialized property values → plain JSON (unknowns marked, secrets unwrapped, refs as URNs)."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if rpc.is_rpc_secret(value):
            return _plain(rpc.unwrap_rpc_secret(value))
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str) and value == rpc.UNKNOWN:
        return UNKNOWN
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    urn = getattr(value, "urn", None)  # a resource reference
    if urn is not None:
        return f"<resource {type(value).__name__}>"
    return repr(value)


def _computed_state(type_token: str, name: str, inputs: dict[str, Any],
                    provider: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A deterministic id and output state for a resource, like a provider would return.

    Outputs the program reads (ids, names, ARNs, self links) get stable fake values derived from
    the type, the logical name and the provider's configuration (region, project, subscription), so
    two runs of the same config give identical inputs.
    """
    state = dict(inputs)
    package = type_token.split(":", 1)[0]
    h = _digest(type_token, name)
    if type_token.startswith("pulumi:providers:"):
        return f"{name}-provider-id", state
    if package == "aws":
        prefixes = {
            "aws:ec2/vpc:Vpc": "vpc-",
            "aws:ec2/subnet:Subnet": "subnet-",
            "aws:ec2/securityGroup:SecurityGroup": "sg-",
            "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
            "aws:ec2/placementGroup:PlacementGroup": "pg-",
            "aws:ec2/internetGateway:InternetGateway": "igw-",
            "aws:ec2/routeTable:RouteTable": "rtb-",
        }
        rid = prefixes.get(type_token, f"{name}-") + h
        service = type_token.split(":")[1].split("/")[0]
        region = provider.get("region", "mock-region")
        state.setdefault("arn", f"arn:aws:{service}:{region}:123456789012:{name}/{rid}")
        state.setdefault("name", name)
        state.setdefault("latestVersion", 1)
        return rid, state
    if package == "azure-native":
        subscription = provider.get("subscriptionId", "00000000-0000-0000-0000-000000000000")
        rg = inputs.get("resourceGroupName", "mock-rg")
        kind = type_token.split(":")[-1]
        physical = (inputs.get("resourceGroupName") if kind == "ResourceGroup" else None) or name
        namespace = _AZURE_NAMESPACES.get(type_token.split(":")[1], "Microsoft.Mock")
        rid = f"/subscriptions/{subscription}/resourceGroups/{rg}/providers/{namespace}/{_plural(kind)}/{physical}"
        if kind == "ResourceGroup":
            rid = f"/subscriptions/{subscription}/resourceGroups/{physical}"
        state.setdefault("name", physical)
        return rid, state
    if package == "gcp":
        kind = type_token.split(":")[-1]
        gproject = inputs.get("project") or provider.get("project") or "mock-project"
        where = f"regions/{inputs['region']}" if "region" in inputs else (
            f"zones/{inputs['zone']}" if "zone" in inputs else "global")
        physical = inputs.get("name", name)
        link = f"https://www.googleapis.com/compute/v1/projects/{gproject}/{where}/{_plural(kind[0].lower() + kind[1:])}/{physical}"
        state.setdefault("name", physical)
        state.setdefault("selfLink", link)
        state.setdefault("selfLinkUnique", f"{link}?uniqueId={int(h[:12], 16)}")
        return link, state
    return f"{name}-id", state


_AZURE_NAMESPACES = {
    "compute": "Microsoft.Compute",
    "network": "Microsoft.Network",
    "monitor": "Microsoft.Insights",
    "resources": "Microsoft.Resources",
}


def _plural(kind: str) -> str:
    if kind.endswith("y"):
        return kind[:-1] + "ies"
    return kind if kind.endswith("s") else kind + "s"


class _Recorder:
    """Shared state of one run: what was registered and called."""

    def __init__(self, project: str, stack: str) -> None:
        self.project = project
        self.stack = stack
        self.lock = threading.Lock()
        self.resources: list[RecordedResource] = []
        self.calls: list[RecordedCall] = []
        self.pending = threading.local()
        self.providers: dict[str, dict[str, Any]] = {}
        self.loops: list[asyncio.AbstractEventLoop] = []

    def thread_loop(self) -> None:
        """Give the calling executor thread an event loop the run owns (and closes at the end).

        The SDK's mock monitor deserializes properties with an event loop per worker thread and
        would otherwise create ones nobody closes.
        """
        if getattr(self.pending, "loop", None) is None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.pending.loop = loop
            with self.lock:
                self.loops.append(loop)

    def close_loops(self) -> None:
        with self.lock:
            loops, self.loops = self.loops, []
        for loop in loops:
            loop.close()

    def provider_inputs(self, reference: str | None) -> dict[str, Any]:
        """The inputs of the provider a ``<urn>::<id>`` reference points to ({} for default providers)."""
        if not reference:
            return {}
        with self.lock:
            return self.providers.get(reference.rsplit("::", 1)[0], {})


def _make_mocks(recorder: _Recorder) -> Any:
    import pulumi

    class RecordingMocks(pulumi.runtime.Mocks):
        """Answers resources and data-source calls deterministically, with no cloud behind them."""

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
            inputs = _plain(args.inputs)
            recorder.pending.inputs = inputs
            if not args.custom and not args.typ.startswith("pulumi:providers:"):
                return "", dict(inputs)
            return _computed_state(args.typ, args.name, inputs, recorder.provider_inputs(args.provider))

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
            given = _plain(args.args)
            result = answer_call(args.token, given, recorder.provider_inputs(args.provider))
            with recorder.lock:
                recorder.calls.append(RecordedCall(args.token, given, result))
            return result, []

    return RecordingMocks()


def answer_call(token: str, args: dict[str, Any], provider: dict[str, Any] | None = None) -> dict[str, Any]:
    """The mock's answer to a data-source call: stable fake values derived from the arguments.

    Known calls: ``aws:ssm/getParameter:getParameter`` (an AMI id for the parameter name and the
    provider's region), ``gcp:compute/getImage:getImage`` (an image self link for the family and
    project). Anything else echoes its arguments back.
    """
    provider = provider or {}
    if token == "aws:ssm/getParameter:getParameter":
        name = str(args.get("name", ""))
        region = str(args.get("region") or provider.get("region", ""))
        return {"id": name, "name": name, "type": "String", "value": "ami-" + _digest(name, region),
                "arn": f"arn:aws:ssm:{region or 'mock-region'}::parameter{name}", "version": 1,
                "insecureValue": "ami-" + _digest(name, region), "withDecryption": True}
    if token == "gcp:compute/getImage:getImage":
        project = str(args.get("project", "mock-project"))
        family = str(args.get("family") or args.get("name") or "image")
        image = f"{family}-v20260101"
        link = f"https://www.googleapis.com/compute/v1/projects/{project}/global/images/{image}"
        return {"id": link, "name": image, "family": family, "project": project, "selfLink": link,
                "status": "READY", "architecture": "X86_64"}
    return dict(args)


def _make_monitor(mocks: Any, recorder: _Recorder) -> Any:
    from pulumi.runtime.mocks import MockMonitor

    class RecordingMonitor(MockMonitor):
        """The SDK's mock monitor, plus a record of each registration's parent and provider."""

        def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
            recorder.thread_loop()
            return super().Invoke(request)  # type: ignore[no-untyped-call]

        def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
            recorder.thread_loop()
            return super().ReadResource(request)  # type: ignore[no-untyped-call]

        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
            recorder.thread_loop()
            recorder.pending.inputs = None
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
            if request.type == "pulumi:pulumi:Stack":
                return response
            inputs = recorder.pending.inputs or {}
            record = RecordedResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=inputs,
                parent=request.parent or None,
                provider=request.provider or None,
                custom=bool(request.custom),
                id=response.id,
                ignore_changes=tuple(request.ignoreChanges),
                protect=bool(request.protect),
                dependencies=tuple(sorted(set(request.dependencies))),
            )
            with recorder.lock:
                recorder.resources.append(record)
                if record.is_provider:
                    recorder.providers[record.urn] = inputs
            return response

    return RecordingMonitor(mocks)


# --- one isolated run --------------------------------------------------------------------------------


def _in_fresh_thread(fn: Any, *args: Any) -> OfflineRun:
    """Run ``fn`` in a new thread, inside an empty :class:`contextvars.Context`.

    Pulumi keeps its settings, config and root stack in ContextVars and needs an event loop of its
    own; a fresh context in a fresh thread gives each run both without touching the caller's (which
    may itself be running an event loop).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["run"] = contextvars.Context().run(fn, *args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="gpufleet-offline-run")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    run: OfflineRun = box["run"]
    return run


def _run_isolated(stack: str, config: dict[str, str], project: str, preview: bool,
                  program: Callable[[], None], search_path: str | None) -> OfflineRun:
    """Runs inside a fresh contextvars.Context in its own thread (see :func:`_in_fresh_thread`)."""
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func

    recorder = _Recorder(project, stack)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    added_path = search_path is not None and search_path not in sys.path
    if added_path:
        sys.path.insert(0, str(search_path))
    error: BaseException | None = None
    outputs: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        mocks = _make_mocks(recorder)
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview,
                                 monitor=_make_monitor(mocks, recorder))
        pulumi.runtime.set_all_config(dict(config))
        try:
            loop.run_until_complete(run_pulumi_func(program))
        except Exception as exc:  # noqa: BLE001 - handed back to the caller
            error = exc
        if error is None:
            stack_resource = settings.get_root_resource()
            raw = dict(getattr(stack_resource, "outputs", {}) or {})
            outputs = loop.run_until_complete(_resolve_outputs(raw))
    finally:
        seconds = time.perf_counter() - started
        try:
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            recorder.close_loops()
            if added_path and search_path in sys.path:
                sys.path.remove(str(search_path))
    resources = sorted(recorder.resources, key=lambda r: r.urn)
    return OfflineRun(stack=stack, resources=resources, outputs=outputs, seconds=seconds, project=project,
                      preview=preview, calls=list(recorder.calls), error=error)


async def _resolve_outputs(raw: dict[str, Any]) -> dict[str, Any]:
    import pulumi

    resolved: dict[str, Any] = {}
    for key in sorted(raw):
        value = await pulumi.Output.from_input(raw[key]).future()
        resolved[key] = _plain(value)
    return resolved

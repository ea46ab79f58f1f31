"""The mock engine of an offline run: Pulumi's mocks and mock monitor, answering every resource and
data-source call with stable fake values and recording what the program registered.

Resource ids and computed outputs come from the cloud's mocks module
(:func:`gpufleet.offline.cloud_mocks.mocks_for`); each record keeps the provider's state (a custom
resource's) or what ``register_outputs`` registered (a component's: ``RegisterResourceOutputs``), as
the engine keeps them. Pulumi is imported inside the functions that build the mocks, never at module
level.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from gpufleet.offline.cloud_mocks import mocks_for
from gpufleet.offline.records import PROVIDER_TYPE_PREFIX, UNKNOWN, RecordedCall, RecordedResource


def plain(value: Any) -> Any:
    """Deserialized property values → plain JSON (unknowns marked, secrets unwrapped, refs as URNs)."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if rpc.is_rpc_secret(value):
            return plain(rpc.unwrap_rpc_secret(value))
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str) and value == rpc.UNKNOWN:
        return UNKNOWN
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    urn = getattr(value, "urn", None)  # a resource reference
    if urn is not None:
        return f"<resource {type(value).__name__}>"
    return repr(value)


def computed_state(type_token: str, name: str, inputs: dict[str, Any],
                   provider: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A deterministic id and output state for a custom resource, like a provider would return.

    Providers get ``<name>-provider-id``; a cloud's resources get what its mocks module computes;
    anything else gets ``<name>-id`` and its inputs.
    """
    if type_token.startswith(PROVIDER_TYPE_PREFIX):
        return f"{name}-provider-id", dict(inputs)
    cloud = mocks_for(type_token)
    if cloud is None:
        return f"{name}-id", dict(inputs)
    return cloud.computed_state(type_token, name, inputs, provider)


def answer_call(token: str, args: dict[str, Any], provider: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The mock's answer to a data-source call: stable fake values derived from the arguments.

    The cloud's mocks module answers the calls it knows (e.g. an SSM parameter's AMI id, an image
    family's self link); anything else echoes its arguments back.
    """
    cloud = mocks_for(token)
    answer = cloud.answer_call(token, args, provider or {}) if cloud is not None else None
    return dict(args) if answer is None else answer


class Recorder:
    """Shared state of one run: what was registered and called."""

    def __init__(self, project: str, stack: str) -> None:
        self.project = project
        self.stack = stack
        self.lock = threading.Lock()
        self.resources: list[RecordedResource] = []
        self.calls: list[RecordedCall] = []
        self.pending = threading.local()
        self.providers: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        """URN → what the resource registered with ``register_outputs`` (components)."""
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

    def finished(self) -> list[RecordedResource]:
        """Every record, in URN order, with the outputs components registered after their creation."""
        with self.lock:
            records = [dataclasses.replace(r, outputs=self.outputs[r.urn]) if r.urn in self.outputs else r
                       for r in self.resources]
        return sorted(records, key=lambda r: r.urn)

    def provider_inputs(self, reference: str | None) -> dict[str, Any]:
        """The inputs of the provider a ``<urn>::<id>`` reference points to ({} for default providers)."""
        if not reference:
            return {}
        with self.lock:
            return self.providers.get(reference.rsplit("::", 1)[0], {})


def make_mocks(recorder: Recorder) -> Any:
    """A :class:`pulumi.runtime.Mocks` that answers deterministically and records into ``recorder``."""
    import pulumi

    class RecordingMocks(pulumi.runtime.Mocks):
        """Answers resources and data-source calls deterministically, with no cloud behind them."""

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
            inputs = plain(args.inputs)
            recorder.pending.inputs = inputs
            recorder.pending.state = None
            if not args.custom and not args.typ.startswith(PROVIDER_TYPE_PREFIX):
                return "", dict(inputs)
            rid, state = computed_state(args.typ, args.name, inputs, recorder.provider_inputs(args.provider))
            recorder.pending.state = state
            return rid, state

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
            given = plain(args.args)
            result = answer_call(args.token, given, recorder.provider_inputs(args.provider))
            with recorder.lock:
                recorder.calls.append(RecordedCall(args.token, given, result))
            return result, []

    return RecordingMocks()


def make_monitor(mocks: Any, recorder: Recorder) -> Any:
    """The SDK's mock monitor, recording each registration (parent, provider, options) into ``recorder``."""
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
            recorder.pending.state = None
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
            if request.type == "pulumi:pulumi:Stack":
                return response
            inputs = recorder.pending.inputs or {}
            state = recorder.pending.state
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
                outputs=plain(state) if state is not None else None,
                computed=_computed_keys(inputs, state) if state is not None else (),
            )
            with recorder.lock:
                recorder.resources.append(record)
                if record.is_provider:
                    recorder.providers[record.urn] = inputs
            return response

        def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
            """What a component registered with ``register_outputs``: the outputs the engine keeps."""
            from pulumi.runtime import rpc

            recorder.thread_loop()
            outputs = plain(rpc.deserialize_properties(request.outputs, keep_unknowns=True))
            with recorder.lock:
                recorder.outputs[request.urn] = outputs
            return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]

    return RecordingMonitor(mocks)


def _computed_keys(inputs: Mapping[str, Any], state: Mapping[str, Any]) -> tuple[str, ...]:
    """The state's top-level keys a provider computed: absent from the inputs, or changed."""
    return tuple(sorted(k for k, v in state.items() if k not in inputs or inputs[k] != v))


__all__ = ["Recorder", "answer_call", "computed_state", "make_mocks", "make_monitor", "plain"]

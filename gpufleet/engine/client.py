"""The engine's side of the analyzer gRPC protocol, spoken to a running pack.

After starting the pack (:class:`~gpufleet.engine.process.PackProcess`), ``pulumi preview
--policy-pack`` does three things, and :class:`PolicyEngine` does the same:

1. **Describe**: ``GetAnalyzerInfo`` returns the pack's policies, their enforcement levels and the
   JSON schema of each policy's config.
2. **Configure**: the engine reconciles the config file given with ``--policy-pack-config``
   (:func:`~gpufleet.engine.config.reconcile_policy_config`), refuses to run when it does not
   validate, and sends the result with ``Configure``.
3. **Analyze**: ``Analyze`` for each resource (only useful for resource policies) and one
   ``AnalyzeStack`` with every resource: type, name, URN, parent, provider, options, and properties
   as a ``google.protobuf.Struct`` (unknown values stay as Pulumi's sentinel strings).

``grpc`` and the Pulumi protobufs load when the pack is started, not when this module is imported.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpufleet.engine.config import PackInfo, PolicyConfigEntry, PolicyInfo, reconcile_policy_config
from gpufleet.engine.process import NO_ENGINE_ADDRESS, PackProcess, PolicyEngineError, pack_file
from gpufleet.engine.resources import StackResource, urn_type
from gpufleet.engine.violations import PROTO_LEVELS, Violation, violations_from

_LEVEL_TO_PROTO = {v: k for k, v in PROTO_LEVELS.items()}
_MAX_MESSAGE_BYTES = 400 * 1024 * 1024  # what pulumi_policy's server accepts


@dataclass
class EngineRun:
    """What one analysis produced, with timings in seconds."""

    info: PackInfo
    config: dict[str, PolicyConfigEntry]
    diagnostics: list[Violation]
    seconds_start: float = 0.0
    seconds_analyze: float = 0.0

    @property
    def blocked(self) -> bool:
        return any(d.blocking for d in self.diagnostics)


class PolicyEngine(PackProcess):
    """Start a policy pack as Pulumi does and talk to it over the Analyzer gRPC protocol.

    Use as a context manager; the pack process is stopped on exit (and by :meth:`close`)::

        with PolicyEngine("policies", stack="dev") as engine:
            run = engine.run(resources, config)

    Args:
        pack_dir: the directory holding ``PulumiPolicy.yaml`` (default: the pack of the Pulumi
            project around the working directory, see :func:`gpufleet.project.default_pack_dir`).
        rpc_timeout: seconds each call may take.
        options: as :class:`~gpufleet.engine.process.PackProcess` (``python``, ``stack``,
            ``project``, ``stack_config``, ``dry_run``, ``startup_timeout``).
    """

    def __init__(self, pack_dir: str | Path | None = None, *, rpc_timeout: float = 600.0, **options: Any) -> None:
        if pack_dir is None:
            from gpufleet.project import default_pack_dir

            pack_dir = default_pack_dir()
        super().__init__(pack_dir, **options)
        self.rpc_timeout = rpc_timeout
        self.seconds_start = 0.0
        self._channel: Any = None
        self._stub: Any = None
        self._info: PackInfo | None = None

    def __enter__(self) -> PolicyEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> int:
        """Start the pack (unless :meth:`launch` did) and connect; returns the port it listens on
        (on 127.0.0.1). :attr:`seconds_start` is the time spent here: waiting for a launched pack
        counts only what was not overlapped by the caller's work."""
        if self._stub is not None:
            return super().start()
        began = time.perf_counter()
        port = super().start()
        import grpc
        from pulumi.runtime.proto import analyzer_pb2_grpc

        options = [("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES)]
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.startup_timeout)
        except grpc.FutureTimeoutError:
            self.close()
            raise PolicyEngineError(f"the policy pack on port {port} does not accept connections"
                                    + self.stderr_tail()) from None
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self.seconds_start = time.perf_counter() - began
        return port

    def close(self) -> None:
        """Close the channel and stop the pack process (terminate, then kill after 5 s)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._stub = None
        super().close()

    # the protocol ------------------------------------------------------------------------------

    def _call(self, method: str, request: Any) -> Any:
        if self._stub is None:
            self.start()
        import grpc

        try:
            return getattr(self._stub, method)(request, timeout=self.rpc_timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else "?"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise PolicyEngineError(f"policy pack {method} failed ({code}): {details}{self.stderr_tail()}") from None

    def handshake(self) -> None:
        """``Handshake`` (the engine's first call; packs that do not implement it are fine)."""
        import grpc
        from pulumi.runtime.proto import analyzer_pb2

        directory = str(self.pack_dir.resolve())
        try:
            self._stub.Handshake(analyzer_pb2.AnalyzerHandshakeRequest(
                engine_address=NO_ENGINE_ADDRESS, root_directory=directory, program_directory=directory),
                timeout=self.rpc_timeout)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise PolicyEngineError(f"policy pack Handshake failed: {exc.details()}") from None

    def configure_stack(self) -> None:
        """``ConfigureStack``: the stack, project and organization (as the engine sends them)."""
        from pulumi.runtime.proto import analyzer_pb2

        self._call("ConfigureStack", analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=self.stack, project=self.project, organization="organization", dry_run=self.dry_run))

    def info(self) -> PackInfo:
        """``GetAnalyzerInfo``: the pack's name, version, policies and their config schemas."""
        if self._info is not None:
            return self._info
        from google.protobuf import empty_pb2, json_format

        resp = self._call("GetAnalyzerInfo", empty_pb2.Empty())
        policies = []
        for p in resp.policies:
            schema = None
            if resp.supportsConfig and p.HasField("configSchema"):
                schema = {"properties": json_format.MessageToDict(p.configSchema.properties),
                          "required": list(p.configSchema.required)}
            kind = {0: "unspecified", 1: "resource", 2: "stack"}.get(int(p.policy_type), "unspecified")
            policies.append(PolicyInfo(name=p.name, description=p.description,
                                       enforcement=PROTO_LEVELS[int(p.enforcementLevel)],
                                       config_schema=schema, kind=kind,
                                       remediation_steps=p.remediation_steps, url=p.url))
        initial = {
            k: PolicyConfigEntry(PROTO_LEVELS[int(v.enforcementLevel)],
                                 json_format.MessageToDict(v.properties))
            for k, v in resp.initialConfig.items()
        }
        # As the engine does: PulumiPolicy.yaml's version wins over the one the pack reports.
        self._info = PackInfo(name=resp.name, version=self.yaml_version() or resp.version,
                              policies=tuple(sorted(policies, key=lambda x: x.name)),
                              supports_config=resp.supportsConfig, initial_config=initial)
        return self._info

    def yaml_version(self) -> str:
        """The ``version`` in the pack's PulumiPolicy.yaml ("" when absent)."""
        version = pack_file(self.pack_dir).get("version")
        return str(version) if version is not None else ""

    def configure(self, config: Mapping[str, PolicyConfigEntry]) -> None:
        """``Configure`` with an already reconciled config (see :func:`reconcile_policy_config`)."""
        from pulumi.runtime.proto import analyzer_pb2

        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, entry in config.items():
            pc = request.policyConfig[name]
            pc.enforcementLevel = _LEVEL_TO_PROTO[entry.enforcement or "advisory"]
            pc.properties.update(_plain(entry.properties))
        self._call("Configure", request)

    def analyze(self, resource: StackResource) -> list[Violation]:
        """``Analyze`` one resource (what the engine does for each resource as it registers)."""
        from pulumi.runtime.proto import analyzer_pb2

        r = to_analyzer_resource(resource)
        request = analyzer_pb2.AnalyzeRequest(type=r.type, properties=r.properties, urn=r.urn, name=r.name,
                                              options=r.options)
        if r.HasField("provider"):
            request.provider.CopyFrom(r.provider)
        return violations_from(self._call("Analyze", request))

    def analyze_stack(self, resources: Sequence[StackResource]) -> list[Violation]:
        """``AnalyzeStack`` with every resource of the stack."""
        from pulumi.runtime.proto import analyzer_pb2

        request = analyzer_pb2.AnalyzeStackRequest(resources=[to_analyzer_resource(r) for r in resources])
        return violations_from(self._call("AnalyzeStack", request))

    def run(
        self,
        resources: Sequence[StackResource],
        config: Mapping[str, PolicyConfigEntry] | None = None,
        *,
        strict: bool = True,
        config_source: str = "",
        per_resource: bool | None = None,
        reconciled: Mapping[str, PolicyConfigEntry] | None = None,
    ) -> EngineRun:
        """The whole exchange of a ``pulumi preview --policy-pack``: handshake, describe, configure,
        analyze each resource (when the pack has resource policies, or ``per_resource=True``), then
        analyze the stack.

        Args:
            reconciled: the effective config, when the caller already reconciled ``config`` with
                this pack's policies (:func:`reconcile_policy_config`); sent as it is.

        Raises:
            SpecError: the policy config does not validate against the pack's schemas.
            PolicyEngineError: the pack did not start or an RPC failed.
        """
        self.start()
        self.handshake()
        self.configure_stack()
        info = self.info()
        effective = (dict(reconciled) if reconciled is not None
                     else reconcile_policy_config(info, config, strict=strict, source=config_source))
        began = time.perf_counter()
        self.configure(effective)
        diagnostics: list[Violation] = []
        if per_resource or (per_resource is None and any(p.kind == "resource" for p in info.policies)):
            for r in resources:
                diagnostics += [dataclasses.replace(d, resource=d.resource or r.urn) for d in self.analyze(r)]
        diagnostics += self.analyze_stack(resources)
        return EngineRun(info=info, config=effective, diagnostics=diagnostics,
                         seconds_start=self.seconds_start, seconds_analyze=time.perf_counter() - began)


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples become lists, mappings become dicts, ints stay numbers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_analyzer_resource(r: StackResource) -> Any:
    """A resource serialised as the engine does: properties in a Struct, options with the parent."""
    from pulumi.runtime.proto import analyzer_pb2

    msg = analyzer_pb2.AnalyzerResource(type=r.type, urn=r.urn, name=r.name, parent=r.parent or "",
                                        dependencies=list(r.dependencies))
    msg.properties.update(_plain(r.properties))
    msg.options.parent = r.parent or ""
    msg.options.customTimeouts.SetInParent()
    if r.provider:
        msg.provider.urn = r.provider
        msg.provider.type = urn_type(r.provider)
        msg.provider.name = r.provider.rsplit("::", 1)[-1]
    return msg


__all__ = ["EngineRun", "PolicyEngine", "to_analyzer_resource"]

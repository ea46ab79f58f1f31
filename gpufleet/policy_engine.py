"""The engine side of Pulumi's policy protocol: run a policy pack as Pulumi runs it, with no Pulumi CLI.

``pulumi preview --policy-pack DIR`` does four things with a Python pack, and this module does the
same, so ``gpufleet preview`` and the tests exercise the pack exactly as the engine does:

1. **Start** ``python -u -m pulumi.policy <engine-address> .`` with the pack directory as working
   directory (the ``pulumi-analyzer-policy-python`` shim does this; ``PULUMI_CONFIG``,
   ``PULUMI_PROJECT``, ``PULUMI_STACK`` and ``PULUMI_DRY_RUN`` are in its environment), and read the
   port the pack prints as its first line on stdout. ``pulumi_policy`` parses the engine address but
   never dials it, so no engine server is needed here.
2. **Describe**: ``GetAnalyzerInfo`` returns the pack's policies, their enforcement levels and the
   JSON schema of each policy's config.
3. **Configure**: the engine reconciles the config file given with ``--policy-pack-config`` (defaults
   from each schema, then the file), validates every policy's properties against its schema, refuses
   to run when they do not validate, and sends the result with ``Configure``.
4. **Analyze**: ``Analyze`` for each resource (only useful for resource policies) and one
   ``AnalyzeStack`` with every resource: type, name, URN, parent, provider, options, and properties
   as a ``google.protobuf.Struct`` (unknown values stay as Pulumi's sentinel strings).

Differences from the engine, on purpose: :func:`reconcile_policy_config` with ``strict=True`` also
rejects config keys a policy's schema does not name and config for policies the pack does not have
(the engine ignores both, so a typo silently drops a floor). The JSON-schema check covers the subset
of JSON Schema that policy config schemas use (see :func:`validate_json_schema`); a schema using any
other keyword is refused rather than half-checked.

Only the standard library is imported at module level: ``grpc`` and the Pulumi protobufs load when a
pack is started, so the policy pack itself can import the schema validator cheaply.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpufleet.errors import EXIT_INTERNAL, GpufleetError, Issue, SpecError
from gpufleet.names import UNKNOWN_SENTINEL

ENFORCEMENT_LEVELS: tuple[str, ...] = ("advisory", "mandatory", "remediate", "disabled")
"""Pulumi's enforcement levels, in the order of the protobuf enum (0 advisory … 3 remediate)."""
_PROTO_LEVELS = {0: "advisory", 1: "mandatory", 2: "disabled", 3: "remediate"}
_LEVEL_TO_PROTO = {v: k for k, v in _PROTO_LEVELS.items()}

NO_ENGINE_ADDRESS = "127.0.0.1:0"
"""Passed where Pulumi passes its engine's address: pulumi_policy parses the argument, never dials it."""

_MAX_MESSAGE_BYTES = 400 * 1024 * 1024  # what pulumi_policy's server accepts


class PolicyEngineError(GpufleetError):
    """The policy pack could not be started or did not answer (an internal fault, exit 1)."""

    exit_code = EXIT_INTERNAL


# --- JSON schema (the subset policy config schemas use) -------------------------------------------

_ANNOTATIONS = frozenset({"description", "default", "title", "examples", "$comment", "$schema", "format",
                          "deprecated", "readOnly", "writeOnly"})
_CHECKED = frozenset({"type", "properties", "required", "additionalProperties", "propertyNames", "items",
                      "minItems", "maxItems", "enum", "const", "minimum", "maximum", "exclusiveMinimum",
                      "exclusiveMaximum", "minLength", "maxLength", "pattern", "minProperties",
                      "maxProperties", "uniqueItems"})


def validate_json_schema(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Every way ``value`` breaks ``schema``, as ``"<path>: <what is wrong>"`` lines (empty: valid).

    Supports ``type``, ``properties``, ``required``, ``additionalProperties``, ``propertyNames``,
    ``items``, ``minItems``/``maxItems``, ``uniqueItems``, ``enum``, ``const``, ``minimum``/``maximum``,
    ``exclusiveMinimum``/``exclusiveMaximum`` (numbers, as in draft 6 and later), ``minLength``/
    ``maxLength``, ``pattern``, ``minProperties``/``maxProperties``, and ignores annotations
    (``description``, ``default``, ...).

    Raises:
        ValueError: the schema uses a keyword outside that subset (a bug in the schema, not the value).
    """
    unknown = set(schema) - _CHECKED - _ANNOTATIONS
    if unknown:
        raise ValueError(f"schema at {path or '(root)'} uses unsupported keyword(s) {', '.join(sorted(unknown))}")
    where = path or "(root)"
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        kinds = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is_type(value, k) for k in kinds):
            return [f"{where}: must be {' or '.join(_TYPE_WORDS.get(k, k) for k in kinds)}, got {_show(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: must be one of {', '.join(json.dumps(v) for v in schema['enum'])}, got {_show(value)}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: must be {json.dumps(schema['const'])}, got {_show(value)}")
    if _is_type(value, "number"):
        errors += _check_number(value, schema, where)
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: must have at most {schema['maxLength']} characters")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: must have at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: must have at most {schema['maxItems']} item(s)")
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            errors.append(f"{where}: items must be unique")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += validate_json_schema(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, Mapping):
        errors += _check_object(value, schema, path)
    return errors


_TYPE_WORDS = {"object": "an object", "array": "a list", "string": "a string", "number": "a number",
               "integer": "a whole number", "boolean": "true or false", "null": "null"}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "integer":
        return _is_type(value, "number") and float(value).is_integer()
    raise ValueError(f"unknown JSON schema type {kind!r}")


def _check_number(value: float, schema: Mapping[str, Any], where: str) -> list[str]:
    errors = []
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: must be at least {schema['minimum']:g}, got {value:g}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{where}: must be at most {schema['maximum']:g}, got {value:g}")
    for key, sign, word in (("exclusiveMinimum", 1, "greater than"), ("exclusiveMaximum", -1, "less than")):
        bound = schema.get(key)
        if bound is None:
            continue
        if isinstance(bound, bool):
            raise ValueError(f"{key} must be a number (draft 6+), not a boolean, at {where}")
        if not sign * (value - bound) > 0:
            errors.append(f"{where}: must be {word} {bound:g}, got {value:g}")
    return errors


def _check_object(value: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    where = path or "(root)"
    errors: list[str] = []
    props: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            errors.append(f"{_join(path, name)}: is required")
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append(f"{where}: must have at least {schema['minProperties']} entr(y/ies)")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(f"{where}: must have at most {schema['maxProperties']} entr(y/ies)")
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames")
    for key, item in value.items():
        sub = _join(path, key)
        if names is not None:
            errors += [e.replace(f"{sub}:", f"{sub} (name):", 1)
                       for e in validate_json_schema(key, names, sub)]
        if key in props:
            errors += validate_json_schema(item, props[key], sub)
        elif extra is False:
            allowed = ", ".join(sorted(props)) or "none"
            errors.append(f"{sub}: unknown property (allowed: {allowed})")
        elif isinstance(extra, Mapping):
            errors += validate_json_schema(item, extra, sub)
    return errors


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# --- policy config: parse, reconcile, validate (as the engine does) -------------------------------


@dataclass(frozen=True)
class PolicyConfigEntry:
    """One policy's config as the engine sends it: an enforcement level and properties."""

    enforcement: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


def load_policy_config(path: str | Path) -> dict[str, PolicyConfigEntry]:
    """Read a ``--policy-pack-config`` JSON file the way the Pulumi engine parses it.

    Each top-level key names a policy (or ``all``); its value is an enforcement level string or an
    object with an optional ``enforcementLevel`` and the policy's properties.

    Raises:
        SpecError: the file cannot be read, is not JSON, or is not shaped like a policy config.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(Issue("policy-config", f"cannot read {source}: {exc.strerror}"), source=source) from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(Issue("policy-config", f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                              'an object such as {"capacity-covers-demand": {"floors": {...}}}'),
                        source=source) from None
    return parse_policy_config(data, source=source)


def parse_policy_config(data: Any, *, source: str = "") -> dict[str, PolicyConfigEntry]:
    """Validate the shape of an already-parsed policy config (see :func:`load_policy_config`)."""
    if not isinstance(data, Mapping):
        raise SpecError(Issue("policy-config", f"must be a JSON object keyed by policy name, got {_show(data)}"),
                        source=source)
    issues: list[Issue] = []
    result: dict[str, PolicyConfigEntry] = {}
    for name, value in data.items():
        if isinstance(value, str):
            if value not in ENFORCEMENT_LEVELS:
                issues.append(Issue(name, f"{value!r} is not a valid enforcement level", ", ".join(ENFORCEMENT_LEVELS)))
                continue
            result[name] = PolicyConfigEntry(enforcement=value)
        elif isinstance(value, Mapping):
            props = dict(value)
            level = props.pop("enforcementLevel", None)
            if level is not None and level not in ENFORCEMENT_LEVELS:
                issues.append(Issue(f"{name}.enforcementLevel", f"{_show(level)} is not a valid enforcement level",
                                    ", ".join(ENFORCEMENT_LEVELS)))
                continue
            if level is None and not props:
                continue  # the engine drops empty entries
            result[name] = PolicyConfigEntry(enforcement=level, properties=props)
        else:
            issues.append(Issue(name, f"{_show(value)} is not a valid value",
                                "an enforcement level string or an object of the policy's properties"))
    if issues:
        raise SpecError(issues, source=source)
    return result


@dataclass(frozen=True)
class PolicyInfo:
    """A policy as ``GetAnalyzerInfo`` describes it."""

    name: str
    description: str
    enforcement: str
    config_schema: dict[str, Any] | None  # {"properties": {...}, "required": [...]}
    kind: str  # "stack", "resource" or "unspecified"
    remediation_steps: str = ""
    url: str = ""


@dataclass(frozen=True)
class PackInfo:
    """The pack as ``GetAnalyzerInfo`` describes it."""

    name: str
    version: str
    policies: tuple[PolicyInfo, ...]
    supports_config: bool = True
    initial_config: dict[str, PolicyConfigEntry] = field(default_factory=dict)

    def policy(self, name: str) -> PolicyInfo:
        return next(p for p in self.policies if p.name == name)


def reconcile_policy_config(
    info: PackInfo,
    config: Mapping[str, PolicyConfigEntry] | None = None,
    *,
    strict: bool = True,
    source: str = "",
) -> dict[str, PolicyConfigEntry]:
    """Every policy's effective config: schema defaults, then the pack's initial config, then ``config``.

    Mirrors the engine's ``ReconcilePolicyPackConfig``: an ``all`` entry sets every enforcement level,
    and each policy's properties must validate against its schema.

    Args:
        strict: also refuse config for a policy the pack does not have, and properties a policy's
            schema does not name (the engine ignores both).

    Raises:
        SpecError: listing every validation error, each located as ``<policy>.<property path>``.
    """
    config = dict(config or {})
    result: dict[str, PolicyConfigEntry] = {}
    for p in info.policies:
        schema_props = (p.config_schema or {}).get("properties", {})
        defaults = {k: v["default"] for k, v in schema_props.items() if isinstance(v, Mapping) and "default" in v}
        result[p.name] = PolicyConfigEntry(enforcement=p.enforcement, properties=json.loads(json.dumps(defaults)))
    for layer in (info.initial_config, config):
        all_level = layer.get("all")
        if all_level is not None and all_level.enforcement:
            result = {k: PolicyConfigEntry(all_level.enforcement, v.properties) for k, v in result.items()}
        for name, given in layer.items():
            if name == "all":
                continue
            current = result.get(name, PolicyConfigEntry())
            result[name] = PolicyConfigEntry(
                enforcement=given.enforcement or current.enforcement,
                properties={**current.properties, **given.properties},
            )
    issues: list[Issue] = []
    known = {p.name for p in info.policies}
    if strict:
        for name in config:
            if name != "all" and name not in known:
                issues.append(Issue(name, "no policy of that name in the pack",
                                    ", ".join(sorted(known)) + _did_you_mean(name, known)))
    for p in info.policies:
        if p.config_schema is None:
            continue
        props = result[p.name].properties
        schema = {"type": "object", "properties": p.config_schema.get("properties", {})}
        if p.config_schema.get("required"):
            schema["required"] = list(p.config_schema["required"])
        if strict:
            schema["additionalProperties"] = False
        for error in validate_json_schema(props, schema):
            loc, _, message = error.partition(": ")
            issues.append(Issue(p.name if loc == "(root)" else f"{p.name}.{loc}", message))
    if issues:
        raise SpecError(issues, source=source or "policy config")
    return {k: v for k, v in result.items() if k in known}


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- resources as the engine sends them ------------------------------------------------------------


@dataclass(frozen=True)
class StackResource:
    """One resource of the stack as ``AnalyzeStack`` receives it.

    Attributes:
        properties: camelCase property names as the engine sees them; numbers may be floats;
            unknown values are Pulumi's sentinel strings.
        parent: URN of the parent resource, if any.
        provider: URN of the provider resource, if any.
    """

    type: str
    name: str
    urn: str
    properties: dict[str, Any]
    parent: str | None = None
    provider: str | None = None
    dependencies: tuple[str, ...] = ()

    @classmethod
    def from_recorded(cls, recorded: Any) -> StackResource:
        """From a ``gpufleet.offline`` recorded resource (``type``, ``name``, ``urn``, ``inputs``,
        ``parent``, ``provider``), or a mapping with those keys."""
        from gpufleet.offline import UNKNOWN as OFFLINE_UNKNOWN

        get = recorded.get if isinstance(recorded, Mapping) else lambda k, d=None: getattr(recorded, k, d)
        provider = get("provider", None)
        props = get("inputs", None) or get("properties", None) or {}
        return cls(
            type=str(get("type")),
            name=str(get("name")),
            urn=str(get("urn")),
            properties=_with_unknowns(props, OFFLINE_UNKNOWN),
            parent=get("parent", None) or None,
            provider=provider_urn(provider) if provider else None,
        )


def _with_unknowns(value: Any, marker: str) -> Any:
    """A plain copy of ``value`` with the offline runner's unknown marker replaced by the engine's."""
    if isinstance(value, Mapping):
        return {str(k): _with_unknowns(v, marker) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_with_unknowns(v, marker) for v in value]
    return UNKNOWN_SENTINEL if value == marker else value


def provider_urn(reference: str) -> str:
    """The URN in a provider reference ``<urn>::<id>`` (a bare URN is returned as is)."""
    # A URN has three "::" separators (urn:pulumi:stack::project::type::name); a reference adds the id.
    return reference.rpartition("::")[0] if reference.count("::") >= 4 else reference


def urn_type(urn: str) -> str:
    """The resource type in a URN (``urn:pulumi:stack::project::parent$type::name``)."""
    parts = urn.split("::")
    return parts[2].rsplit("$", 1)[-1] if len(parts) >= 4 else ""


@dataclass(frozen=True)
class Diagnostic:
    """A policy violation as the engine reports it.

    Attributes:
        message: the violation text (the engine's message is the policy description, a newline,
            then this text).
        enforcement: ``advisory``, ``mandatory``, ``disabled`` or ``remediate``.
        urn: the resource the violation is about, or "" for the stack as a whole.
    """

    policy: str
    enforcement: str
    message: str
    urn: str = ""
    description: str = ""
    pack: str = ""
    pack_version: str = ""

    @property
    def blocking(self) -> bool:
        return self.enforcement in ("mandatory", "remediate")


@dataclass
class EngineRun:
    """What one analysis produced, with timings in seconds."""

    info: PackInfo
    config: dict[str, PolicyConfigEntry]
    diagnostics: list[Diagnostic]
    seconds_start: float = 0.0
    seconds_analyze: float = 0.0

    @property
    def blocked(self) -> bool:
        return any(d.blocking for d in self.diagnostics)


# --- the pack process and its gRPC client ---------------------------------------------------------


def default_pack_dir(start: str | Path | None = None) -> Path:
    """The repository's ``policies/`` pack: the one next to the ``Pulumi.yaml`` above ``start``
    (default: this package's checkout, then the working directory). ``GPUFLEET_POLICY_PACK`` wins."""
    env = os.environ.get("GPUFLEET_POLICY_PACK")
    if env:
        return Path(env)
    candidates = []
    if start is not None:
        candidates.append(Path(start).resolve())
    candidates += [Path(__file__).resolve().parent, Path.cwd()]
    for base in candidates:
        for d in (base, *base.parents):
            if (d / "policies" / "PulumiPolicy.yaml").is_file():
                return d / "policies"
    return Path.cwd() / "policies"


class PolicyEngine:
    """Start a policy pack as Pulumi does and talk to it over the Analyzer gRPC protocol.

    Use as a context manager; the pack process is stopped on exit (and by :meth:`close`)::

        with PolicyEngine("policies", stack="dev") as engine:
            run = engine.run(resources, config)

    Args:
        pack_dir: the directory holding ``PulumiPolicy.yaml``.
        python: the interpreter to run the pack with (default: this one; Pulumi uses the pack's
            virtualenv, which must hold the same packages).
        stack, project, stack_config: passed as ``PULUMI_STACK``, ``PULUMI_PROJECT`` and
            ``PULUMI_CONFIG`` (a JSON object of ``"<namespace>:<key>": value``), as the engine does.
        startup_timeout: seconds to wait for the pack to print its port.
    """

    def __init__(
        self,
        pack_dir: str | Path | None = None,
        *,
        python: str | None = None,
        stack: str = "dev",
        project: str = "gpufleet",
        stack_config: Mapping[str, Any] | None = None,
        dry_run: bool = True,
        startup_timeout: float = 60.0,
        rpc_timeout: float = 600.0,
    ) -> None:
        self.pack_dir = Path(pack_dir) if pack_dir is not None else default_pack_dir()
        self.python = python or sys.executable
        self.stack = stack
        self.project = project
        self.stack_config = dict(stack_config or {})
        self.dry_run = dry_run
        self.startup_timeout = startup_timeout
        self.rpc_timeout = rpc_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.seconds_start = 0.0
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._threads: list[threading.Thread] = []
        self._channel: Any = None
        self._stub: Any = None
        self._info: PackInfo | None = None

    # lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> PolicyEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def argv(self) -> list[str]:
        """The command line, as the ``pulumi-analyzer-policy-python`` shim builds it."""
        return [self.python, "-u", "-m", "pulumi.policy", NO_ENGINE_ADDRESS, "."]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
        env.update({
            "PULUMI_PROJECT": self.project,
            "PULUMI_STACK": self.stack,
            "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
            "PULUMI_ORGANIZATION": "organization",
            "PYTHONUNBUFFERED": "1",
        })
        if self.stack_config:
            env["PULUMI_CONFIG"] = json.dumps(self.stack_config)
        return env

    def start(self) -> int:
        """Start the pack and connect; returns the port it listens on (on 127.0.0.1)."""
        if self.process is not None:
            assert self.port is not None
            return self.port
        if not (self.pack_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyEngineError(f"no policy pack at {self.pack_dir} (PulumiPolicy.yaml missing)")
        began = time.perf_counter()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                self.argv, cwd=self.pack_dir, env=self.environment(),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise PolicyEngineError(f"cannot start the policy pack with {self.python}: {exc}") from exc
        first_line: list[str] = []
        got_line = threading.Event()
        self._drain(self.process.stderr, self._stderr.append)

        def read_stdout(stream: Any) -> None:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if not got_line.is_set():
                    first_line.append(line)
                    got_line.set()
            got_line.set()

        t = threading.Thread(target=read_stdout, args=(self.process.stdout,), daemon=True)
        t.start()
        self._threads.append(t)
        if not got_line.wait(self.startup_timeout) or not first_line or not first_line[0].strip().isdigit():
            try:  # stdout closed: the pack is exiting; wait for its code
                code = self.process.wait(timeout=5) if got_line.is_set() else self.process.poll()
            except subprocess.TimeoutExpired:
                code = None
            self.close()
            state = f"exited with code {code}" if code is not None else f"printed no port in {self.startup_timeout:g} s"
            raise PolicyEngineError(f"the policy pack at {self.pack_dir} {state}"
                                    + (f": {first_line[0]!r}" if first_line and first_line[0] else "")
                                    + self._stderr_tail())
        self.port = int(first_line[0].strip())
        import grpc
        from pulumi.runtime.proto import analyzer_pb2_grpc

        options = [("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES)]
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=options)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.startup_timeout)
        except grpc.FutureTimeoutError:
            self.close()
            raise PolicyEngineError(f"the policy pack on port {self.port} does not accept connections"
                                    + self._stderr_tail()) from None
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self.seconds_start = time.perf_counter() - began
        return self.port

    def _drain(self, stream: Any, sink: Any) -> None:
        def pump() -> None:
            for raw in iter(stream.readline, b""):
                sink(raw.decode("utf-8", "replace").rstrip("\n"))

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        self._threads.append(t)

    def _stderr_tail(self, lines: int = 15) -> str:
        tail = list(self._stderr)[-lines:]
        return ("\n--- policy pack stderr ---\n" + "\n".join(tail)) if tail else ""

    @property
    def stderr(self) -> str:
        return "\n".join(self._stderr)

    def close(self) -> None:
        """Close the channel and stop the pack process (terminate, then kill after 5 s)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._stub = None
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()

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
            raise PolicyEngineError(f"policy pack {method} failed ({code}): {details}{self._stderr_tail()}") from None

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
                                       enforcement=_PROTO_LEVELS[int(p.enforcementLevel)],
                                       config_schema=schema, kind=kind,
                                       remediation_steps=p.remediation_steps, url=p.url))
        initial = {
            k: PolicyConfigEntry(_PROTO_LEVELS[int(v.enforcementLevel)],
                                 json_format.MessageToDict(v.properties))
            for k, v in resp.initialConfig.items()
        }
        # As the engine does: PulumiPolicy.yaml's version wins over the one the pack reports.
        self._info = PackInfo(name=resp.name, version=self.yaml_version() or resp.version, policies=tuple(sorted(policies, key=lambda x: x.name)),
                              supports_config=resp.supportsConfig, initial_config=initial)
        return self._info

    def yaml_version(self) -> str:
        """The ``version`` in the pack's PulumiPolicy.yaml ("" when absent)."""
        import yaml

        try:
            doc = yaml.safe_load((self.pack_dir / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return ""
        version = doc.get("version") if isinstance(doc, Mapping) else None
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

    def analyze(self, resource: StackResource) -> list[Diagnostic]:
        """``Analyze`` one resource (what the engine does for each resource as it registers)."""
        from pulumi.runtime.proto import analyzer_pb2

        r = _to_analyzer_resource(resource)
        request = analyzer_pb2.AnalyzeRequest(type=r.type, properties=r.properties, urn=r.urn, name=r.name,
                                              options=r.options)
        if r.HasField("provider"):
            request.provider.CopyFrom(r.provider)
        return self._diagnostics(self._call("Analyze", request))

    def analyze_stack(self, resources: Sequence[StackResource]) -> list[Diagnostic]:
        """``AnalyzeStack`` with every resource of the stack."""
        from pulumi.runtime.proto import analyzer_pb2

        request = analyzer_pb2.AnalyzeStackRequest(resources=[_to_analyzer_resource(r) for r in resources])
        return self._diagnostics(self._call("AnalyzeStack", request))

    def _diagnostics(self, response: Any) -> list[Diagnostic]:
        out = []
        for d in response.diagnostics:
            message = d.message
            if d.description and message.startswith(d.description):
                message = message[len(d.description):].lstrip("\n")
            out.append(Diagnostic(policy=d.policyName, enforcement=_PROTO_LEVELS[int(d.enforcementLevel)],
                                  message=message, urn=d.urn, description=d.description,
                                  pack=d.policyPackName, pack_version=self.info().version))
        return out

    def run(
        self,
        resources: Sequence[StackResource],
        config: Mapping[str, PolicyConfigEntry] | None = None,
        *,
        strict: bool = True,
        config_source: str = "",
        per_resource: bool | None = None,
    ) -> EngineRun:
        """The whole exchange of a ``pulumi preview --policy-pack``: handshake, describe, configure,
        analyze each resource (when the pack has resource policies, or ``per_resource=True``), then
        analyze the stack.

        Raises:
            SpecError: the policy config does not validate against the pack's schemas.
            PolicyEngineError: the pack did not start or an RPC failed.
        """
        self.start()
        self.handshake()
        self.configure_stack()
        info = self.info()
        effective = reconcile_policy_config(info, config, strict=strict, source=config_source)
        began = time.perf_counter()
        self.configure(effective)
        diagnostics: list[Diagnostic] = []
        if per_resource or (per_resource is None and any(p.kind == "resource" for p in info.policies)):
            for r in resources:
                diagnostics += [
                    Diagnostic(d.policy, d.enforcement, d.message, d.urn or r.urn, d.description, d.pack,
                               d.pack_version)
                    for d in self.analyze(r)
                ]
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


def _to_analyzer_resource(r: StackResource) -> Any:
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


__all__ = [
    "ENFORCEMENT_LEVELS",
    "Diagnostic",
    "EngineRun",
    "PackInfo",
    "PolicyConfigEntry",
    "PolicyEngine",
    "PolicyEngineError",
    "PolicyInfo",
    "StackResource",
    "default_pack_dir",
    "load_policy_config",
    "parse_policy_config",
    "reconcile_policy_config",
    "validate_json_schema",
]

"""``gpufleet preview``: a stack's program under Pulumi's mocks, then the policy pack over the engine's
protocol, with no credentials and no Pulumi CLI. Reusable: ``gpufleet diff`` runs it for two stacks.

One preview, in order:

1. read the policy config (Pulumi's ``--policy-pack-config`` format), find the stack's Pulumi
   project (:func:`gpufleet.project.find_project`: the program and the pack), read the stack file
   and validate its fleet (:func:`gpufleet.stackfile.read_stack`): bad input fails here, before any
   process starts;
2. start the pack in the project's ``policies/`` exactly as ``pulumi preview --policy-pack`` does
   (:class:`gpufleet.engine.PolicyEngine`), and, in a thread, wait for it, read its policies and
   reconcile the policy config with their schemas (once);
3. meanwhile run the program under mocks (:func:`gpufleet.offline.run_program`, given the stack
   config read in 1) and collect every resource;
4. join the thread: a pack that did not start is reported first, then a bad policy config (bad
   input, exit 2, no report), then whatever the program raised;
5. ``AnalyzeStack`` over all the resources; summarise capacity against demand per workload and
   power per site with the pack's own inventory code (the numbers the policies judged).

Exit codes (:attr:`PreviewResult.exit_code` and the CLI): 0 pass (advisory findings allowed),
3 blocked by a mandatory violation, 2 bad input (stack file, policy config), 1 internal fault.

Renderers: :func:`render_text` (Rich), :meth:`PreviewResult.to_json`, :func:`render_markdown` (a PR
comment, kept under GitHub's comment size), :func:`render_sarif` (SARIF 2.1.0 for code scanning,
results pointing at the stack file).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from gpufleet.engine import (
    EngineRun,
    PackInfo,
    PolicyConfigEntry,
    PolicyEngine,
    StackResource,
    Violation,
    analyzed_resources,
    load_policy_config,
    reconcile_policy_config,
)
from gpufleet.errors import EXIT_BLOCKED, EXIT_OK
from gpufleet.project import default_pack_dir, find_project, find_project_file
from gpufleet.stackfile import check_config_size, pulumi_config, read_config, read_stack, stack_name

PREVIEW_SCHEMA_VERSION = 1
MARKDOWN_LIMIT_CHARS = 60_000
"""GitHub refuses comments over 65,536 characters; the Markdown report stays below this."""

Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass
class PreviewResult:
    """Everything one preview produced. ``verdict`` is ``blocked`` when a mandatory policy fails."""

    stack: str
    stack_file: str
    resources: list[StackResource]
    violations: list[Violation]
    workloads: list[dict[str, Any]]
    sites: list[dict[str, Any]]
    pack: PackInfo
    policy_config: dict[str, PolicyConfigEntry]
    seconds_program: float = 0.0
    seconds_pack_start: float = 0.0
    seconds_policy: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "blocked" if any(v.blocking for v in self.violations) else "pass"

    @property
    def exit_code(self) -> int:
        return EXIT_BLOCKED if self.verdict == "blocked" else EXIT_OK

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.blocking]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if not v.blocking]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON report (``--format json``); key order is part of the contract."""
        return {
            "stack": self.stack,
            "resources": [{"type": r.type, "name": r.name, "inputs": r.properties, "urn": r.urn,
                           "parent": r.parent} for r in self.resources],
            "violations": [v.to_json() for v in self.violations],
            "workloads": self.workloads,
            "verdict": self.verdict,
            "schema_version": PREVIEW_SCHEMA_VERSION,
            "stack_file": self.stack_file,
            "sites": self.sites,
            "policy_pack": {"name": self.pack.name, "version": self.pack.version},
            "notes": self.notes,
        }


# --- running -----------------------------------------------------------------------------------------


def run_preview(
    stack_file: str | Path,
    policy_config: str | Path | None = None,
    *,
    pack_dir: str | Path | None = None,
    engine: PolicyEngine | None = None,
    progress: Progress | None = None,
    root: str | Path | None = None,
) -> PreviewResult:
    """Preview a stack offline and run the policy pack over its resources.

    Args:
        stack_file: ``stacks/Pulumi.<stack>.yaml``.
        policy_config: a policy config file in Pulumi's ``--policy-pack-config`` format.
        pack_dir: the policy pack (default: ``$GPUFLEET_POLICY_PACK``, else ``policies/`` of the
            stack's Pulumi project, see :mod:`gpufleet.project`).
        engine: an already started :class:`PolicyEngine` to reuse (left running); by default one
            is started for this preview and stopped after it.
        progress: called with a short description as each step starts.
        root: the project directory the program reads ``gpufleet:fleetFiles`` from (default: the
            stack's project).

    Raises:
        SpecError: bad stack file or policy config, no Pulumi project found, or a config too big
            for ``PULUMI_CONFIG`` (exit 2).
        InfeasiblePlanError: the program found no placement (exit 3).
        PolicyEngineError: the pack did not start or answer (exit 1).
    """
    from gpufleet.offline import run_program
    from gpufleet.policy.summary import summarize

    say = progress or (lambda _msg: None)
    stack_path = Path(stack_file)
    config_source = str(policy_config) if policy_config else ""
    given = load_policy_config(policy_config) if policy_config else {}
    project = find_project(stack_path)
    config = read_config(stack_path)  # read once
    read_stack(stack_path, root=root, config=config)  # bad input fails before any process starts
    stack_config, notes = pulumi_config(config, project.name)
    size_note = check_config_size(stack_config, source=str(stack_path))
    pack_dir = Path(pack_dir) if pack_dir is not None else default_pack_dir(stack_path)
    own_engine = engine is None
    eng = engine or PolicyEngine(pack_dir, stack=stack_name(stack_path), project=project.name,
                                 stack_config=stack_config)
    ready = _Background("gpufleet-pack-start", lambda: _pack_ready(eng, given, config_source))
    analysis: _Background[EngineRun] | None = None
    try:
        say(f"starting the policy pack {pack_dir}")
        eng.launch()
        ready.start()  # the pack boots, describes its policies and the config is reconciled, while the program runs
        say(f"running the program of {stack_path} under Pulumi's mocks")
        program_error: Exception | None = None
        try:
            run = run_program(stack_path, preview=True, check=False, root=root,
                              stack_config=(stack_name(stack_path), stack_config, notes))
        except Exception as exc:  # noqa: BLE001 - reported after the pack's and the config's errors
            program_error = exc
        effective = ready.result()  # the pack's failure, then a bad config, win over the program's errors
        if program_error is not None:
            raise program_error
        if run.error is not None:
            raise run.error
        resources = analyzed_resources(run)  # outputs, computed values unknown, as the engine sends them
        say(f"analysing {len(resources)} resources with {len(eng.info().policies)} policies")
        began = time.perf_counter()
        analysis = _Background("gpufleet-analysis", lambda: eng.run(resources, given, config_source=config_source,
                                                                     reconciled=effective)).start()
        # while the pack analyses: the summary, with the same inventory code and config as the policies
        summary = summarize(_pack_resources(resources), {k: v.properties for k, v in effective.items()})
        engine_run = analysis.result()
        seconds_policy = time.perf_counter() - began
    finally:
        if own_engine:
            eng.close()
        ready.join()
        if analysis is not None:
            analysis.join()
    names = {r.urn: r.name for r in resources}
    violations = [_violation(d, names) for d in engine_run.diagnostics]
    violations.sort(key=lambda v: (not v.blocking, v.policy, v.resource or "", v.message))
    return PreviewResult(
        stack=run.stack,
        stack_file=str(stack_path),
        resources=resources[1:],
        violations=violations,
        workloads=summary["workloads"],
        sites=summary["sites"],
        pack=engine_run.info,
        policy_config=engine_run.config,
        seconds_program=run.seconds,
        seconds_pack_start=ready.seconds_waited,
        seconds_policy=seconds_policy,
        notes=([size_note] if size_note else []) + list(run.notes) + ([eng.note] if eng.note else []),
    )


class _Background(Generic[T]):
    """One call run in a thread while the caller works; :meth:`result` waits for it and raises what
    it raised."""

    def __init__(self, name: str, call: Callable[[], T]) -> None:
        self.call = call
        self.value: T | None = None
        self.error: BaseException | None = None
        self.seconds_waited = 0.0
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.value = self.call()
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread by result()
            self.error = exc

    def start(self) -> _Background[T]:
        self.thread.start()
        return self

    def result(self) -> T:
        began = time.perf_counter()
        self.thread.join()
        self.seconds_waited = time.perf_counter() - began
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]

    def join(self) -> None:
        """Wait for the thread after the pack is stopped (it then ends quickly), if it was started."""
        if self.thread.ident is not None:
            self.thread.join(timeout=10)


def _pack_ready(engine: PolicyEngine, given: Mapping[str, PolicyConfigEntry], source: str) -> dict[str, PolicyConfigEntry]:
    """Wait for the pack, read its policies and reconcile the policy config with their schemas."""
    engine.start()
    return reconcile_policy_config(engine.info(), given, source=source)


def _violation(v: Violation, names: Mapping[str, str]) -> Violation:
    return dataclasses.replace(v, resource_name=names.get(v.resource) if v.resource else None)


def _pack_resources(resources: list[StackResource]) -> list[Any]:
    from gpufleet.policy.resources import Resource

    return [Resource(type=r.type, name=r.name, urn=r.urn, props=r.properties, parent=r.parent) for r in resources]


# --- text --------------------------------------------------------------------------------------------


def _nodes_text(w: Mapping[str, Any], key: str) -> str:
    n = w.get(key)
    if n is None:
        return "—"
    gpus = f" ({n * w['gpus_per_node']:,} {w['gpu']})" if w.get("gpus_per_node") and w.get("gpu") else ""
    return f"{n:,}{gpus}"


def render_text(result: PreviewResult, console: Any) -> None:
    """The Rich summary: capacity against demand per workload, power per site, violations, verdict."""
    from rich.table import Table
    from rich.text import Text

    console.print(Text.assemble(("gpufleet preview ", "bold"), (result.stack, "bold cyan"),
                                f"  {len(result.resources)} resources · policy pack "
                                f"{result.pack.name} {result.pack.version}"))
    workloads = Table(title="Capacity against demand", title_justify="left")
    for col, justify in (("workload", "left"), ("role", "left"), ("sites", "left"), ("provisioned", "right"),
                         ("needs", "right"), ("status", "left"), ("demand from", "left")):
        workloads.add_column(col, justify=justify)  # type: ignore[arg-type]
    for w in result.workloads:
        status = {"ok": "[green]ok[/]", "short": "[red]short[/]"}.get(w["status"], "[yellow]unknown[/]")
        prov = _nodes_text(w, "nodes_provisioned")
        if w["role"] == "inference" and w.get("nodes_min") is not None:
            prov = f"{w['nodes_min']}–{prov}"
        workloads.add_row(w["name"], w["role"], ", ".join(w["sites"]) or "—", prov, _nodes_text(w, "nodes_needed"),
                          status, w.get("demand_source") or w.get("note") or "—")
    console.print(workloads)
    sites = Table(title="Power and GPUs per site", title_justify="left")
    for col, justify in (("site", "left"), ("draw MW", "right"), ("envelope MW", "right"), ("GPUs", "left"),
                         ("quota", "left")):
        sites.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in result.sites:
        envelope = s["envelope_mw"]
        over = envelope is not None and s["power_mw"] > envelope
        draw = f"[red]{s['power_mw']:.2f}[/]" if over else f"{s['power_mw']:.2f}"
        sites.add_row(s["name"], draw, "—" if envelope is None else f"{envelope:g}",
                      ", ".join(f"{n:,} {m}" for m, n in s["gpus"].items()) or "—",
                      ", ".join(f"{n:,} {m}" for m, n in s["quota_gpus"].items()) or "—")
    console.print(sites)
    if result.violations:
        console.print(Text(f"Violations: {len(result.mandatory)} mandatory, {len(result.advisory)} advisory",
                           style="bold"))
        for v in result.violations:
            style = "bold red" if v.blocking else "yellow"
            where = f" ({v.resource_name})" if v.resource_name else ""
            console.print(Text.assemble((f"  [{v.enforcement}] ", style), (v.policy, "bold"), where))
            console.print(Text(f"    {v.message}"))
    for note in result.notes:
        console.print(Text(f"note: {note}", style="dim"))
    if result.verdict == "blocked":
        console.print(Text(f"BLOCKED by {len(result.mandatory)} mandatory violation(s)", style="bold red"))
    else:
        extra = f" ({len(result.advisory)} advisory finding(s))" if result.advisory else ""
        console.print(Text(f"PASS{extra}", style="bold green"))


# --- markdown ----------------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(result: PreviewResult, *, limit_chars: int = MARKDOWN_LIMIT_CHARS) -> str:
    """A pull-request comment: verdict, capacity per workload, power per site, violations."""
    icon = "⛔" if result.verdict == "blocked" else "✅"
    head = [f"### {icon} gpufleet preview `{result.stack}`: {result.verdict}", "",
            f"{len(result.resources)} resources · {len(result.mandatory)} mandatory, {len(result.advisory)} advisory "
            f"finding(s) · policy pack {result.pack.name} {result.pack.version}", ""]
    lines = head + ["| Workload | Role | Sites | Provisioned | Needs | Status |", "|---|---|---|---:|---:|---|"]
    for w in result.workloads:
        status = {"ok": "✅ ok", "short": "⛔ short"}.get(w["status"], "❔ unknown")
        lines.append(f"| {_md(w['name'])} | {w['role']} | {_md(', '.join(w['sites']) or '—')} | "
                     f"{_md(_nodes_text(w, 'nodes_provisioned'))} | {_md(_nodes_text(w, 'nodes_needed'))} | {status} |")
    lines += ["", "| Site | Draw MW | Envelope MW | GPUs |", "|---|---:|---:|---|"]
    for s in result.sites:
        envelope = "—" if s["envelope_mw"] is None else f"{s['envelope_mw']:g}"
        gpus = ", ".join(f"{n:,} {m}" for m, n in s["gpus"].items()) or "—"
        lines.append(f"| {_md(s['name'])} | {s['power_mw']:.2f} | {envelope} | {_md(gpus)} |")
    tail = [""]
    if result.violations:
        lines += ["", "#### Policy violations", "", "| Level | Policy | Resource | Finding |", "|---|---|---|---|"]
        size = sum(len(x) + 1 for x in lines)
        for i, v in enumerate(result.violations):
            row = (f"| {'⛔' if v.blocking else '⚠️'} {v.enforcement} | `{v.policy}` | {_md(v.resource_name or '—')} "
                   f"| {_md(v.message)} |")
            if size + len(row) > limit_chars - 300:
                tail = ["", f"_… and {len(result.violations) - i} more violation(s); "
                            "see the JSON report (`gpufleet preview --format json`)._"]
                break
            lines.append(row)
            size += len(row) + 1
    return "\n".join(lines + tail) + "\n"


# --- SARIF -------------------------------------------------------------------------------------------


def _line_of(stack_file: str, candidates: list[str]) -> int:
    """The line of the first ``name: <candidate>`` in the stack file (1 when none is found)."""
    try:
        text = Path(stack_file).read_text(encoding="utf-8")
    except OSError:
        return 1
    lines = text.splitlines()
    for cand in candidates:
        pattern = re.compile(rf"^\s*(-\s+)?name:\s*['\"]?{re.escape(cand)}['\"]?\s*(#.*)?$")
        for i, line in enumerate(lines, start=1):
            if pattern.match(line):
                return i
    return 1


def _subjects(v: Violation, result: PreviewResult) -> list[str]:
    """Names a violation is about, most specific first: the message's subject, then its resource."""
    subject = v.message.split(":", 1)[0].strip()
    out = [subject]
    for w in result.workloads:
        if subject in w["pools"] or subject == w["name"]:
            out += [w["name"], *w["sites"]]
    if v.resource_name:
        out.append(v.resource_name)
    return out


def _artifact_uri(stack_file: str) -> str:
    path = Path(stack_file).resolve()
    project_file = find_project_file(path.parent)
    return path.relative_to(project_file.parent).as_posix() if project_file else Path(stack_file).as_posix()


def render_sarif(result: PreviewResult) -> dict[str, Any]:
    """SARIF 2.1.0: one rule per policy, one result per violation, located in the stack file."""
    rules = []
    index: dict[str, int] = {}
    for i, p in enumerate(result.pack.policies):
        index[p.name] = i
        rules.append({
            "id": p.name,
            "name": "".join(part.capitalize() for part in p.name.split("-")),
            "shortDescription": {"text": p.description},
            "fullDescription": {"text": p.description},
            "help": {"text": p.remediation_steps or p.description},
            "defaultConfiguration": {"level": "error" if p.enforcement == "mandatory" else "warning"},
            "properties": {"enforcementLevel": p.enforcement, "tags": ["gpufleet", "capacity"]},
        })
    uri = _artifact_uri(result.stack_file)
    results = []
    for v in result.violations:
        location: dict[str, Any] = {"physicalLocation": {
            "artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": _line_of(result.stack_file, _subjects(v, result))},
        }}
        if v.resource:
            location["logicalLocations"] = [{"fullyQualifiedName": v.resource, "name": v.resource_name or "",
                                             "kind": "resource"}]
        fingerprint = hashlib.sha256(f"{v.policy}\x1f{v.resource or ''}\x1f{v.message.split(':', 1)[0]}".encode())
        results.append({
            "ruleId": v.policy,
            **({"ruleIndex": index[v.policy]} if v.policy in index else {}),
            "level": "error" if v.blocking else "warning",
            "message": {"text": v.message},
            "locations": [location],
            "partialFingerprints": {"gpufleetViolation/v1": fingerprint.hexdigest()},
        })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "gpufleet", "version": result.pack.version,
                                "informationUri": "https://github.com/gpufleet/gpufleet/blob/main/docs/policies.md",
                                "rules": rules}},
            "automationDetails": {"id": f"gpufleet-preview/{result.stack}/"},
            "results": results,
            "properties": {"verdict": result.verdict},
        }],
    }


def render(result: PreviewResult, fmt: str) -> str:
    """The report in ``json``, ``markdown`` or ``sarif`` as text (``text`` needs a console)."""
    if fmt == "json":
        return json.dumps(result.to_json(), indent=2) + "\n"
    if fmt == "markdown":
        return render_markdown(result)
    if fmt == "sarif":
        return json.dumps(render_sarif(result), indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


__all__ = [
    "PREVIEW_SCHEMA_VERSION",
    "PreviewResult",
    "render",
    "render_markdown",
    "render_sarif",
    "render_text",
    "run_preview",
]

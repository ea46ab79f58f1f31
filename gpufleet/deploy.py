"""Deploying several stacks: ``pulumi up`` per stack through Pulumi's Automation API, gated by the pack.

One deployment, in order:

1. every stack file is read and validated (:func:`plan_deploy`), so a bad stack stops everything
   before any ``up`` starts (exit 2), and each stack's project, policy pack and policy config are found;
2. the order is fixed: the stacks as given (a directory's by name), and a stack waits for the
   nearest earlier stack that shares a site with it (sites match by ``name``): stacks on one site
   draw on one power envelope and one GPU quota, so they are deployed one after another, each ``up``
   seeing the previous one's result; a failed stack skips the stacks waiting for it (the site's
   state is unknown), never the others. Stacks that share no site run in parallel;
3. the Pulumi CLI is checked (:meth:`Deployer.check`): without it nothing starts (exit 4);
4. ``pulumi up`` per stack (:meth:`Deployer.up`), at most ``jobs`` at once
   (:func:`gpufleet.parallel.run_jobs`), each with ``--policy-pack <project>/policies`` and the
   stack's policy config, so a mandatory violation stops that stack's update before it changes anything.

The seam is :class:`Deployer` (``check`` and ``up``); :class:`AutomationDeployer` is the one
implementation, importing ``pulumi.automation`` only inside its methods. Tests give a fake.

The report (``gpufleet deploy --format json``, :func:`report_json`) is one document: the stacks in the
order they were planned, each with its sites, the stacks it waits for, its pack and config and, once
deployed, how it ended.

Exit codes of one stack: 0 deployed, 3 blocked (the update failed with a mandatory policy
violation), 1 the update failed otherwise. The run's: the worst stack's
(:func:`gpufleet.stackset.worst_exit`); 4 when the Pulumi CLI is missing or too old, 2 bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gpufleet.errors import EXIT_BLOCKED, EXIT_INTERNAL, EXIT_NOT_CHECKED, EXIT_OK, GpufleetError, Issue, SpecError
from gpufleet.parallel import Event, Handle, Job, Outcome, ThreadHandle, run_jobs
from gpufleet.stackset import StackRef, policy_config_for

REPORT_SCHEMA_VERSION = 1
"""Version of :func:`report_json`'s document; it changes when a key changes meaning or goes away."""
POLICY_CONFIG_DIR = "config"
"""Per-stack policy configs by default: ``<project>/policies/config/<stack>.json`` (as deploy.yml)."""

Say = Callable[[str], None]


class PulumiUnavailableError(GpufleetError):
    """The Pulumi CLI (or the ``pulumi`` Python package) is not there or too old: nothing was deployed."""

    exit_code = EXIT_NOT_CHECKED


@dataclass(frozen=True)
class DeployTarget:
    """One stack to deploy.

    Attributes:
        stack: the stack's name (``Pulumi.<stack>.yaml``).
        stack_file: its config file, given to ``pulumi up --config-file``.
        project_dir: the directory of its ``Pulumi.yaml`` (the Automation API's work dir).
        policy_pack: the policy pack directory (``--policy-pack``).
        policy_config: the pack's config for this stack (``--policy-pack-config``), if any.
        sites: the names of the sites the stack uses.
        after: stacks that must be deployed first (earlier stacks sharing a site).
    """

    stack: str
    stack_file: Path
    project_dir: Path
    policy_pack: Path
    policy_config: Path | None
    sites: tuple[str, ...]
    after: tuple[str, ...] = ()

    @property
    def job(self) -> Job:
        return Job(self.stack, self.after)


@dataclass(frozen=True)
class UpResult:
    """How one ``pulumi up`` ended: its exit code and one line saying what happened."""

    exit_code: int
    summary: str


class Deployer(Protocol):
    """The seam between the orchestration and Pulumi."""

    def check(self) -> str:
        """The Pulumi CLI's version. Raises :class:`PulumiUnavailableError` when it cannot run."""

    def up(self, target: DeployTarget, say: Say) -> UpResult:
        """Run ``pulumi up`` for one stack, gated by its policy pack; ``say`` gets progress lines."""


def plan_deploy(stacks: Sequence[StackRef], *, policy_config: Path | None = None,
                policy_config_dir: Path | None = None) -> list[DeployTarget]:
    """Validate every stack and fix the order (see the module docstring).

    Args:
        stacks: the stacks, in the order given.
        policy_config: one policy config for every stack.
        policy_config_dir: ``<dir>/<stack>.json`` per stack; by default the project's
            ``policies/config``.

    Raises:
        SpecError: every stack that does not validate, or has no project (exit 2); nothing is deployed.
    """
    from gpufleet.project import default_pack_dir, find_project
    from gpufleet.stackfile import load_stack

    issues: list[Issue] = []
    targets: list[DeployTarget] = []
    last_on_site: dict[str, str] = {}
    for ref in stacks:
        try:
            _, spec = load_stack(ref.path)
            project = find_project(ref.path)
            pack = default_pack_dir(ref.path)
        except SpecError as exc:
            issues += [Issue(f"{ref.path}: {i.loc}", i.message, i.hint) for i in exc.issues]
            continue
        configs = policy_config_dir if policy_config_dir is not None or policy_config is not None else \
            pack / POLICY_CONFIG_DIR
        sites = tuple(sorted({site.name for site in spec.sites}))
        after = tuple(sorted({last_on_site[s] for s in sites if s in last_on_site}))
        targets.append(DeployTarget(ref.name, ref.path, project.file.parent, pack,
                                    policy_config_for(ref, every=policy_config, per_stack_dir=configs),
                                    sites, after))
        last_on_site.update(dict.fromkeys(sites, ref.name))
    if issues:
        raise SpecError(issues)
    return targets


@dataclass
class StackDeploy:
    """How one stack's deployment ended: the scheduler's outcome and ``up``'s summary line."""

    target: DeployTarget
    outcome: Outcome
    summary: str = ""


def deploy(targets: Sequence[DeployTarget], deployer: Deployer, *, jobs: int, fail_fast: bool = False,
           on_event: Event | None = None, on_tick: Callable[[Mapping[str, Handle]], None] | None = None,
           grace_s: float = 60.0) -> list[StackDeploy]:
    """Check the Pulumi CLI, then ``pulumi up`` every target, at most ``jobs`` at once, in order.

    A stack waits for its ``after`` stacks and is skipped when one of them failed; with
    ``fail_fast`` the first failure starts nothing more. On an interrupt no other stack starts and
    the running updates get ``grace_s`` to end (a killed ``pulumi up`` leaves pending operations).

    Raises:
        PulumiUnavailableError: the CLI cannot run (exit 4), before any stack starts.
    """
    deployer.check()
    by_name = {t.stack: t for t in targets}
    summaries: dict[str, str] = {}

    def start(job: Job) -> Handle:
        target = by_name[job.name]

        def run(say: Say) -> int:
            try:
                result = deployer.up(target, say)
            except Exception as exc:  # one stack's crash is its result, the others go on
                result = UpResult(EXIT_INTERNAL, f"{type(exc).__name__}: {exc}")
            summaries[job.name] = result.summary
            return result.exit_code

        return ThreadHandle(run, name=job.name)

    outcomes = run_jobs([t.job for t in targets], start, max_parallel=jobs, fail_fast=fail_fast,
                        on_event=on_event, on_tick=on_tick, grace_s=grace_s)
    return [StackDeploy(by_name[o.name], o, summaries.get(o.name, "")) for o in outcomes]


def report_json(targets: Sequence[DeployTarget], results: Sequence[StackDeploy] | None,
                exit_code: int) -> dict[str, Any]:
    """The deployment as one JSON document (``gpufleet deploy --format json``).

    Args:
        targets: the stacks in their planned order.
        results: how each ended, or None when nothing was deployed (the plan only, without ``--yes``).
        exit_code: the run's exit code.

    Returns:
        ``schema_version``, ``command``, ``deployed``, ``exit_code`` and ``stacks[]``, in the planned
        order: ``stack``, ``stack_file``, ``sites``, ``after``, ``policy_pack``, ``policy_config`` and,
        when deployed, ``state`` (``done``, ``skipped``, ``not started``), ``exit_code`` (None unless
        it ran), ``result`` (``pass``, ``blocked``, ...), ``seconds``, ``summary`` (``up``'s line) and
        ``reason`` (why it was skipped or not started).
    """
    from gpufleet.stackset import result_word

    ended = {r.target.stack: r for r in results or ()}
    stacks: list[dict[str, Any]] = []
    for t in targets:
        row: dict[str, Any] = {"stack": t.stack, "stack_file": str(t.stack_file), "sites": list(t.sites),
                               "after": list(t.after), "policy_pack": str(t.policy_pack),
                               "policy_config": str(t.policy_config) if t.policy_config else None}
        if results is not None:
            r = ended[t.stack]
            row |= {"state": r.outcome.state, "exit_code": r.outcome.exit_code,
                    "result": result_word(r.outcome.exit_code), "seconds": round(r.outcome.seconds, 2),
                    "summary": r.summary or None, "reason": r.outcome.reason or None}
        stacks.append(row)
    return {"schema_version": REPORT_SCHEMA_VERSION, "command": "deploy", "deployed": results is not None,
            "exit_code": exit_code, "stacks": stacks}


class AutomationDeployer:
    """:class:`Deployer` through ``pulumi.automation``: a LocalWorkspace on the project directory."""

    def __init__(self) -> None:
        self._command: Any = None

    def check(self) -> str:
        try:
            from pulumi import automation as auto
        except ImportError as exc:
            raise PulumiUnavailableError(f"the pulumi Python package is not installed ({exc}); install it: "
                                         "pip install 'gpufleet[pulumi]'") from None
        try:
            command = auto.PulumiCommand()
        except FileNotFoundError:
            raise PulumiUnavailableError(
                "the Pulumi CLI is not installed (no `pulumi` on the PATH): nothing was deployed. Install it "
                "(https://www.pulumi.com/docs/install/) and log in (pulumi login) first") from None
        except auto.InvalidVersionError as exc:
            raise PulumiUnavailableError(f"the Pulumi CLI is too old for this SDK: {exc}") from None
        self._command = command
        return str(command.version) if command.version else "unknown"

    def up(self, target: DeployTarget, say: Say) -> UpResult:
        from pulumi import automation as auto

        if self._command is None:
            self.check()
        mandatory: list[str] = []

        def on_event(event: auto.EngineEvent) -> None:
            policy = event.policy_event
            if policy is not None and policy.enforcement_level == "mandatory":
                mandatory.append(f"{policy.policy_name}: {policy.message}")

        try:
            stack = auto.create_or_select_stack(
                stack_name=target.stack, work_dir=str(target.project_dir),
                opts=auto.LocalWorkspaceOptions(work_dir=str(target.project_dir),
                                                pulumi_command=self._command))
            result = stack.up(policy_packs=[str(target.policy_pack)],
                              policy_pack_configs=[str(target.policy_config)] if target.policy_config else None,
                              config_file=str(target.stack_file), color="never",
                              on_output=lambda line: say(line.strip()), on_event=on_event)
        except auto.CommandError as exc:
            if mandatory:
                return UpResult(EXIT_BLOCKED, f"blocked by {len(mandatory)} mandatory policy violation(s): "
                                              f"{mandatory[0]}")
            return UpResult(EXIT_INTERNAL, _last_lines(str(exc)))
        changes = result.summary.resource_changes or {}
        done = ", ".join(f"{n} {op}" for op, n in sorted(changes.items()) if n) or "no changes"
        return UpResult(EXIT_OK if result.summary.result == "succeeded" else EXIT_INTERNAL,
                        f"{result.summary.result}: {done}")


def _last_lines(text: str, n: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[-n:])[:300]

"""Run a stack's Pulumi program (or a Python callable) under the mock engine, each run isolated.

* :func:`read_stack_config` reads ``stacks/Pulumi.<stack>.yaml`` and sets every config key the way
  the Pulumi CLI would (objects and lists as JSON text, scalars as text);
* :func:`run_program` runs the project's program (found from ``Pulumi.yaml``, see
  :mod:`gpufleet.project`) with :mod:`runpy` inside ``pulumi.runtime.stack.run_pulumi_func``, which
  waits for every outstanding registration; :func:`run_function` does the same for a callable;
* every run happens in its own thread, in a fresh :class:`contextvars.Context` with its own event
  loop, so settings, config and the root stack never leak between runs (and a caller that is itself
  running an event loop is not disturbed).

Pulumi is imported inside the functions that run a program, never at module level.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import runpy
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gpufleet.errors import Issue, SpecError
from gpufleet.heap import collecting_less_often
from gpufleet.names import CONFIG_NAMESPACE, PLACEHOLDER_SSH_PUBLIC_KEY, SSH_KEY_CONFIG, STACK_DIR_CONFIG
from gpufleet.offline.recorder import Recorder, make_mocks, make_monitor, plain
from gpufleet.offline.records import OfflineRun
from gpufleet.project import find_project
from gpufleet.stackfile import PROJECT_ROOT, pulumi_config, read_config, stack_name


def read_stack_config(stack_file: str | Path, project: str = CONFIG_NAMESPACE) -> tuple[str, dict[str, str], list[str]]:
    """Read a stack file's ``config:`` the way the Pulumi CLI passes it to a program.

    Returns:
        The stack name, the config map (fully qualified ``namespace:key`` → text; objects and
        lists as JSON), and notes about keys that could not be passed (encrypted secrets).

    Raises:
        SpecError: the file is missing, is not YAML, or has no ``config:`` mapping.
    """
    path = Path(stack_file)
    config, notes = pulumi_config(read_config(path), project)  # numbers as Pulumi reads them (7.0e10)
    stack = stack_name(path)
    return stack, config, notes


def run_program(
    stack_file: str | Path,
    *,
    project: str | None = None,
    preview: bool = True,
    program: str | Path | None = None,
    check: bool = True,
    root: str | Path | None = None,
    stack_config: tuple[str, dict[str, str], list[str]] | None = None,
) -> OfflineRun:
    """Run the Pulumi program on a stack file under mocks and return what it registered.

    Args:
        stack_file: ``stacks/Pulumi.<stack>.yaml`` (the stack name comes from the file name).
        project: the Pulumi project name URNs carry (default: the ``name`` in the stack's
            ``Pulumi.yaml``).
        preview: run as ``pulumi preview`` (True) or as ``pulumi up`` (False).
        program: the program file (default: the program of the stack's Pulumi project).
        check: re-raise the program's exception (default). With False the exception is returned
            in :attr:`OfflineRun.error` together with whatever was registered before it.
        root: the project directory the program reads ``gpufleet:fleetFiles`` from (default: the
            stack's project; ``gpufleet diff`` passes a git ref's files copied aside).
        stack_config: what :func:`read_stack_config` returned for this stack file, when the caller
            already read it (the file is then not read again).

    Returns:
        An :class:`OfflineRun`. Runs are isolated from each other and from the caller's context.

    Raises:
        SpecError: no Pulumi project around the stack file (or the working directory), no program
            where ``Pulumi.yaml`` says, the stack file cannot be read, or (with ``check``) the
            program rejected it.
        Exception: whatever else the program raised, when ``check`` is True.
    """
    found = None
    if project is None or program is None:
        found = find_project(stack_file)
        project = project or found.name
        if program is None:
            if not found.program.is_file():
                raise SpecError(Issue("main", f"no program at {found.program}",
                                      "main: a .py file, or a directory holding __main__.py (default: "
                                      "__main__.py beside Pulumi.yaml)"), source=str(found.file))
            program = found.program
    stack, config, notes = stack_config or read_stack_config(stack_file, project)
    config, notes = dict(config), list(notes)
    config[STACK_DIR_CONFIG] = str(Path(stack_file).resolve().parent)  # a service's history is read from here
    placeholder = SSH_KEY_CONFIG not in config
    if placeholder:
        config[SSH_KEY_CONFIG] = PLACEHOLDER_SSH_PUBLIC_KEY
    program_path = Path(program).resolve()
    fleet_root = Path(root) if root is not None else found.file.parent if found is not None else None
    if fleet_root is None:
        try:
            fleet_root = find_project(stack_file).file.parent
        except SpecError:
            fleet_root = None  # the program looks around its working directory

    def main() -> None:
        PROJECT_ROOT.set(fleet_root)  # the program reads gpufleet:fleetFiles from there
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
    project: str = CONFIG_NAMESPACE,
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


def _in_fresh_thread(fn: Any, *args: Any) -> OfflineRun:
    """Run ``fn`` in a new thread, inside an empty :class:`contextvars.Context`.

    Pulumi keeps its settings, config and root stack in ContextVars and needs an event loop of its
    own; a fresh context in a fresh thread gives each run both without touching the caller's (which
    may itself be running an event loop). The garbage collector's thresholds, which the program
    raises for its run (:mod:`gpufleet.heap`), are the caller's again afterwards.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with collecting_less_often():  # as the program sets it; put back for the caller
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

    recorder = Recorder(project, stack)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    added_path = search_path is not None and search_path not in sys.path
    if added_path:
        sys.path.insert(0, str(search_path))
    error: BaseException | None = None
    outputs: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        mocks = make_mocks(recorder)
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview,
                                 monitor=make_monitor(mocks, recorder))
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
    resources = recorder.finished()
    return OfflineRun(stack=stack, resources=resources, outputs=outputs, seconds=seconds, project=project,
                      preview=preview, calls=list(recorder.calls), error=error)


async def _resolve_outputs(raw: dict[str, Any]) -> dict[str, Any]:
    """The stack outputs as plain values: an output that is already plain data (the plan summary)
    is taken as it is; anything holding an ``Output``, an awaitable or an input type is resolved by
    the SDK (``Output.from_input`` builds an ``Output`` per nested value: seconds for a big summary)."""
    import pulumi

    resolved: dict[str, Any] = {}
    for key in sorted(raw):
        value = raw[key]
        if not _is_plain(value):
            value = await pulumi.Output.from_input(value).future()
        resolved[key] = plain(value)
    return resolved


def _is_plain(value: Any) -> bool:
    """JSON-like data only: dicts with string keys, lists, tuples, strings, numbers, booleans, None."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if type(value) is dict:
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if type(value) in (list, tuple):
        return all(_is_plain(v) for v in value)
    return False


__all__ = ["read_stack_config", "run_function", "run_program"]

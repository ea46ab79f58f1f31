"""Where the two stacks of a diff come from, and turning each into a :class:`~gpufleet.diff.model.Side`.

The I/O half of ``gpufleet diff`` (the model and the renderers are pure). A stack is given as

* a path to a stack file (``stacks/Pulumi.prod.yaml``), which must exist; or
* a git ref and a path, ``REF:PATH`` (``origin/main:stacks/Pulumi.prod.yaml``), read with
  ``git show`` into a temporary file of the same name (the stack name comes from the file name),
  with the files its ``gpufleet:fleetFiles`` names and its services' ``history`` CSVs as they are
  at REF.
  A PATH that does not exist at REF is an *absent* stack: a stack this change adds (as base) or
  deletes (as head). An unknown REF is bad input.

Each side is planned with :func:`~gpufleet.plan.build_plan` and, unless told otherwise, previewed
with ``gpufleet.preview.run_preview`` (the Pulumi program under mocks, then the policy pack) for its
policy verdicts. A side whose placement is infeasible becomes an ``infeasible`` side rather than an
error: for head that is a blocked change, and the report says why.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from gpufleet.diff.figures import runway_figures
from gpufleet.diff.side import Side
from gpufleet.errors import InfeasiblePlanError, Issue, SpecError
from gpufleet.inputs import MAX_INPUT_BYTES, parse_yaml, read_text
from gpufleet.names import FLEET_CONFIG, FLEET_FILES_CONFIG
from gpufleet.plan import FleetPlan, build_plan
from gpufleet.project import PROJECT_FILE
from gpufleet.stackfile import MAX_FLEET_FILES, fleet_patterns, load_stack, stack_name

PreviewFn = Callable[[Path, Path | None], Mapping[str, Any]]
"""Runs the policy pack on a stack file and returns ``PreviewResult.to_json()``."""


@dataclass(frozen=True)
class StackSource:
    """A stack as the user named it, and the file that holds it (``None`` when absent)."""

    text: str
    path: Path | None
    stack: str
    ref: str | None = None
    root: Path | None = None
    """Where ``gpufleet:fleetFiles`` is read from: the ref's fleet files copied aside (None: the
    stack's own project)."""


def resolve(text: str, workdir: Path, *, repo: Path | None = None, label: str = "stack") -> StackSource:
    """Find the stack file for ``text`` (a path, or ``REF:PATH``), copying git content to ``workdir``.

    Raises:
        SpecError: the path does not exist, the ref is unknown, or git is not available.
    """
    path = Path(text)
    if path.is_file():
        return StackSource(text, path, stack_name(path))
    ref, sep, rel = text.partition(":")
    if not sep or not ref or not rel or re.match(r"^[A-Za-z]$", ref):  # no ref, or a Windows drive letter
        raise SpecError(Issue(f"--{label}", f"no such stack file: {text}",
                              "a stack file, or REF:PATH such as origin/main:stacks/Pulumi.prod.yaml"))
    cwd = str(repo) if repo else None
    where = f"--{label}"
    if ref.startswith("-") or any(c in ref for c in "\n\r\0"):
        raise SpecError(Issue(where, f"{ref!r} is not a git ref", "a branch, tag or commit such as origin/main"))
    parts = PurePosixPath(rel).parts
    if rel.startswith("/") or ".." in parts or any(c in rel for c in "\n\r\0"):
        raise SpecError(Issue(where, f"{rel!r} is not a path inside the repository",
                              "a path relative to the repository root, e.g. stacks/Pulumi.prod.yaml"))
    if _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd).returncode != 0:
        raise SpecError(Issue(where, f"unknown git ref {ref!r} in {text}",
                              "a branch, tag or commit (fetch the base branch first: git fetch origin main)"))
    name = stack_name(rel)
    # Only "no such path at that ref" is an empty side (a new or deleted stack); any other failure
    # of git is an error, never a silent pass.
    listed = _git(["ls-tree", "-z", "--full-tree", ref, "--", rel], cwd)
    if listed.returncode != 0:
        raise SpecError(Issue(where, f"git cannot list {rel} at {ref}: {_tail(listed.stderr)}"))
    entries = [e for e in listed.stdout.split(b"\0") if e]
    if not entries:
        return StackSource(text, None, name, ref)
    mode_type = entries[0].split(b"\t", 1)[0].split()
    if len(mode_type) < 2 or mode_type[1] != b"blob" or mode_type[0] == b"120000":
        raise SpecError(Issue(where, f"{rel} at {ref} is not a regular file", "the path of a stack file"))
    shown = _git(["cat-file", "blob", f"{ref}:{rel}"], cwd)
    if shown.returncode != 0:
        raise SpecError(Issue(where, f"git cannot read {ref}:{rel}: {_tail(shown.stderr)}"))
    if len(shown.stdout) > MAX_INPUT_BYTES:
        raise SpecError(Issue(where, f"{ref}:{rel} is {len(shown.stdout):,} bytes", f"at most {MAX_INPUT_BYTES:,} bytes"))
    target = workdir / label / Path(rel).name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(shown.stdout)  # bytes as stored: the stack reader checks the encoding
    root = _copy_fleet_files(ref, rel, shown.stdout, workdir / label / "project", cwd, where)
    _copy_histories(ref, rel, shown.stdout, root, target.parent, cwd, where)
    return StackSource(text, target, name, ref, root)


def _copy_fleet_files(ref: str, rel: str, stack: bytes, root: Path, cwd: str | None, where: str) -> Path | None:
    """Copy the files the stack's ``gpufleet:fleetFiles`` may name, as they are at ``ref``, under
    ``root`` at their paths in the ref's project directory (the nearest directory above the stack
    holding ``Pulumi.yaml`` at ``ref``, else the repository root). The stack reader then globs
    ``root`` as it globs a project, so both sides of a diff read their files the same way."""
    try:
        config = parse_yaml(stack.decode("utf-8"), source=rel, what="stack").get("config")
        value = config.get(FLEET_FILES_CONFIG) if isinstance(config, dict) else None
    except (SpecError, UnicodeDecodeError, AttributeError):
        return None  # the stack reader reports the stack file itself
    if value is None:
        return None
    patterns = fleet_patterns(value, source=f"{ref}:{rel}")
    project = next((d for d in (p.as_posix() for p in PurePosixPath(rel).parents)
                    if _git(["cat-file", "-e", f"{ref}:{'' if d == '.' else d + '/'}{PROJECT_FILE}"], cwd).returncode == 0),
                   ".")
    prefix = "" if project == "." else project + "/"
    root.mkdir(parents=True, exist_ok=True)
    copied = 0
    for pattern in patterns:
        literal = "/".join(itertools.takewhile(lambda part: not _MAGIC.search(part), pattern.split("/")))
        matcher = _glob_regex(pattern)
        under = (prefix + literal).rstrip("/")
        listed = _git(["ls-tree", "-r", "-z", "--full-tree", ref, "--", *([under] if under else [])], cwd)
        if listed.returncode != 0:
            raise SpecError(Issue(where, f"git cannot list {prefix + literal} at {ref}: {_tail(listed.stderr)}"))
        for entry in filter(None, listed.stdout.split(b"\0")):
            meta, _, name = entry.decode("utf-8", "replace").partition("\t")
            inner = name.removeprefix(prefix)
            if meta.split()[1:2] != ["blob"] or meta.startswith("120000") or not matcher.match(inner):
                continue
            copied += 1
            if copied > MAX_FLEET_FILES:
                raise SpecError(Issue(where, f"{FLEET_FILES_CONFIG} names over {MAX_FLEET_FILES:,} files at {ref}"))
            _copy_blob(ref, name, root / inner, cwd, where)
    return root


def _copy_blob(ref: str, name: str, target: Path, cwd: str | None, where: str) -> None:
    """Write the file ``name`` as it is at ``ref`` to ``target`` (at most :data:`MAX_INPUT_BYTES`)."""
    blob = _git(["cat-file", "blob", f"{ref}:{name}"], cwd)
    if blob.returncode != 0 or len(blob.stdout) > MAX_INPUT_BYTES:
        raise SpecError(Issue(where, f"cannot read {ref}:{name} (git: {_tail(blob.stderr)}; "
                                     f"{len(blob.stdout):,} bytes)", f"at most {MAX_INPUT_BYTES:,} bytes"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(blob.stdout)


def _histories(stack: bytes, root: Path | None) -> list[str]:
    """The ``history`` paths the stack's inline fleet and its copied fleet files declare (what does
    not parse is left for the stack reader to report)."""
    parts: list[Any] = []
    try:
        config = parse_yaml(stack.decode("utf-8"), source="stack", what="stack").get("config")
        parts.append(config.get(FLEET_CONFIG) if isinstance(config, dict) else None)
    except (SpecError, UnicodeDecodeError, AttributeError):
        pass
    for file in sorted(root.rglob("*")) if root is not None else []:
        try:
            parts.append(parse_yaml(read_text(file, what="fleet file"), source=str(file), what="fleet file"))
        except SpecError:
            continue
    found: list[str] = []
    for part in parts:
        services = part.get("inference") if isinstance(part, dict) else None
        for service in services if isinstance(services, list) else []:
            history = service.get("history") if isinstance(service, dict) else None
            if isinstance(history, str) and history not in found:
                found.append(history)
    return found


def _copy_histories(ref: str, rel: str, stack: bytes, root: Path | None, into: Path, cwd: str | None,
                    where: str) -> None:
    """Copy each service's ``history`` CSV, as it is at ``ref``, beside the copied stack file (a
    history is relative to the stack file's directory). A path leading out of that directory, or
    not a regular file at ``ref``, is not copied: the stack reader then refuses it at its field."""
    stack_dir = PurePosixPath(rel).parent
    for history in _histories(stack, root):
        inner = PurePosixPath(history)
        if inner.is_absolute() or ".." in inner.parts or any(c in history for c in "\n\r\0\\"):
            continue
        name = (stack_dir / inner).as_posix()
        listed = _git(["ls-tree", "-z", "--full-tree", ref, "--", name], cwd)
        meta = listed.stdout.split(b"\0", 1)[0].split(b"\t", 1)[0].split()
        if listed.returncode != 0 or len(meta) < 2 or meta[1] != b"blob" or meta[0] == b"120000":
            continue
        _copy_blob(ref, name, into / inner, cwd, where)


_MAGIC = re.compile(r"[*?\[]")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Paths a glob may match (a superset of :meth:`pathlib.Path.glob`'s matches: ``[...]`` is any
    one character), to choose which blobs to copy; the stack reader's own glob picks the files."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] in "?[":
            end = pattern.find("]", i) if pattern[i] == "[" else i
            out, i = out + "[^/]", (end if end > i else i) + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _tail(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "no message"


def _git(args: list[str], cwd: str | None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=60)
    except OSError as exc:
        raise SpecError(Issue("git", f"cannot run git: {exc.strerror}", "install git, or pass stack files")) from None
    except subprocess.TimeoutExpired:
        raise SpecError(Issue("git", f"git {args[0]} did not answer within 60 s")) from None


@dataclass
class Timings:
    """Seconds spent per phase, for the benchmark and ``--verbose`` runs."""

    plan_s: float = 0.0
    preview_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def load_side(source: StackSource, label: str, *, policy_config: Path | None = None,
              preview: PreviewFn | None = None, evaluate_policies: bool = True,
              timings: Timings | None = None, as_of: dt.date | None = None) -> Side:
    """Plan (and preview, for policy verdicts) one side.

    Args:
        source: what :func:`resolve` returned.
        label: ``base`` or ``head``.
        policy_config: the policy pack config file, passed to the preview.
        preview: the preview function (default: ``gpufleet.preview.run_preview``); tests pass a fake.
        evaluate_policies: False skips the preview (the side's verdicts are then "not evaluated").
        timings: accumulates plan and preview seconds.
        as_of: the date each inference service's runway counts from (default: today, UTC).

    Raises:
        SpecError: the stack file does not validate (with the name the user gave, not a temp path).
    """
    if source.path is None:
        return Side.absent(label, source.text, source.stack)
    started = time.perf_counter()
    try:
        stack, spec = load_stack(source.path, root=source.root)
        plan: FleetPlan = build_plan(spec, source.stack or stack)
        as_of = as_of or dt.datetime.now(dt.timezone.utc).date()
        runway = runway_figures(plan, spec, as_of)
    except SpecError as exc:
        raise SpecError(_at_ref(exc.issues, source), source=f"{label} {source.text}") from None
    except InfeasiblePlanError as exc:
        return Side.infeasible(label, source.text, source.stack, str(exc))
    finally:
        if timings is not None:
            timings.plan_s += time.perf_counter() - started
    if not evaluate_policies:
        return Side.planned(label, source.text, plan, violations=None, runway=runway, as_of=as_of)
    started = time.perf_counter()
    try:
        if preview is not None:
            result = preview(source.path, policy_config)
        else:
            # A stack read from git sits in a temporary directory: use the pack of the repository
            # we run in, the same pack for both sides, so the verdicts differ only by the stack.
            result = default_preview(source.path, policy_config, repo=Path.cwd() if source.ref else None,
                                     root=source.root)
    except SpecError as exc:
        raise SpecError(exc.issues, source=f"{label} {source.text}") from None
    finally:
        if timings is not None:
            timings.preview_s += time.perf_counter() - started
    verdict = result.get("verdict")
    return Side.planned(label, source.text, plan, violations=list(result.get("violations") or []),
                        verdict=verdict if verdict in ("pass", "blocked") else None, runway=runway, as_of=as_of)


def _at_ref(issues: list[Issue], source: StackSource) -> list[Issue]:
    """``issues`` naming the files copied from a git ref by their place at the ref (``REF:dir/file``),
    not the temporary directory they were read from."""
    if source.ref is None or source.path is None:
        return issues
    where = PurePosixPath(source.text.partition(":")[2]).parent.as_posix()
    at_ref = f"{source.ref}:{'' if where == '.' else where + '/'}"
    copied = f"{source.path.parent}/"
    return [Issue(i.loc, i.message.replace(copied, at_ref), i.hint) for i in issues]


def default_preview(stack_file: Path, policy_config: Path | None, *, repo: Path | None = None,
                    root: Path | None = None) -> Mapping[str, Any]:
    """The verdict and violations of ``gpufleet.preview.run_preview`` (its JSON report, trimmed).

    Args:
        repo: where to look for the policy pack (``policies/`` next to ``Pulumi.yaml``); default:
            the repository holding ``stack_file``.
        root: where the program reads ``gpufleet:fleetFiles`` (see :attr:`StackSource.root`).
    """
    try:
        from gpufleet.project import default_pack_dir
        from gpufleet.preview import run_preview
    except ImportError as exc:  # the pulumi extra is missing
        raise SpecError(Issue("preview", f"the offline preview is not available ({exc})",
                              "pip install 'gpufleet[pulumi]'")) from None
    pack_dir = default_pack_dir(repo) if repo is not None else None
    data = run_preview(stack_file, policy_config, pack_dir=pack_dir, root=root).to_json()
    return {"verdict": data.get("verdict"), "violations": data.get("violations", [])}

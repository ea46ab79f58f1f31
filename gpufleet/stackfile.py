"""Reading a stack: ``stacks/Pulumi.<stack>.yaml`` and the fleet it declares.

The fleet is declared inline under ``gpufleet:fleet``, in files ``gpufleet:fleetFiles`` names, or
both. Every entry point reads a stack through this module (``gpufleet plan``, ``preview``, ``diff``,
``preflight``, ``fleet check``, and the Pulumi program itself through :func:`fleet_from_config`), so
each refuses the same input with the same message.

``gpufleet:fleetFiles`` is a list of paths or globs (``[fleet/prod/*.yaml]``) **relative to the
project directory**, the one holding ``Pulumi.yaml``: that is the Pulumi program's working directory
under ``pulumi up``, and the CLI finds it from the stack file (:func:`gpufleet.project.find_project`).
Each file holds part of the fleet object (``sites``, ``training``, ``inference``,
``carbon_price_per_tonne``). The parts merge in order (inline first, then each pattern's matches in
sorted order, a file matched twice read once): lists are concatenated, any other setting may be given
at most once, and a site or workload name may appear once. The merged object is validated exactly as
an inline one; an error in a file names the file, the line and the field path inside it
(``fleet/prod/b.yaml:12: inference[2].growth_per_month: ...``).

Refused (``SpecError``, exit 2): a pattern that is absolute, leaves the project directory (``..``, a
symlink pointing out) or matches no file; a missing file; more than :data:`MAX_FLEET_FILES` files or
:data:`MAX_FLEET_BYTES` in all; anything :mod:`gpufleet.inputs` refuses in one file.

Config size: Pulumi hands a program (and a policy pack) its whole config in one environment
variable, ``PULUMI_CONFIG``, and Linux caps one environment string at 128 KiB (``MAX_ARG_STRLEN``).
:func:`check_config_size` refuses a config past it, pointing to ``gpufleet:fleetFiles``, and warns
from :data:`CONFIG_WARN_SHARE` of it.

Nothing here imports Pulumi.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from gpufleet.errors import Issue, SpecError
from gpufleet.inputs import Lines, parse_yaml, parse_yaml_lines, read_text
from gpufleet.names import FLEET_CONFIG, FLEET_FILES_CONFIG, PROGRAM_CONFIG_KEYS
from gpufleet.spec import FleetSpec, parse_fleet
from gpufleet.validation import show

MAX_FLEET_FILES = 1_000
"""Most files ``gpufleet:fleetFiles`` may name in all."""
MAX_FLEET_BYTES = 32 * 1024 * 1024
"""Most bytes the fleet files may hold together (each file is also bounded by ``inputs``)."""
MAX_ARG_STRLEN = 128 * 1024
"""Linux's cap on one environment string (``NAME=value`` and its NUL), ``PULUMI_CONFIG`` included."""
CONFIG_WARN_SHARE = 0.75
"""Share of :data:`MAX_ARG_STRLEN` from which ``preview`` and ``plan`` warn."""
CONFIG_ENV = "PULUMI_CONFIG"
FLEET_DOCS = "docs/fleets.md"

PROJECT_ROOT: ContextVar[Path | None] = ContextVar("gpufleet_project_root", default=None)
"""The project directory a program run reads ``gpufleet:fleetFiles`` from. Offline runs set it (the
stack's project, or a git ref's files copied aside); unset, the program uses the project around its
working directory, as under ``pulumi up``."""

_LIST_KEYS = ("sites", "training", "inference")
_MAGIC = re.compile(r"[*?\[]")
_FILES_LOC = f"config.{FLEET_FILES_CONFIG}"


@dataclass(frozen=True)
class Stack:
    """A read and validated stack file.

    Attributes:
        name: the stack name, from the file name (``prod`` for ``Pulumi.prod.yaml``).
        file: the stack file.
        spec: the validated fleet (inline and files merged).
        config: the stack file's ``config:`` mapping as written.
        fleet_files: the files the fleet was read from, in merge order.
    """

    name: str
    file: Path
    spec: FleetSpec
    config: dict[str, Any]
    fleet_files: tuple[Path, ...] = ()


def stack_name(path: str | Path) -> str:
    """``prod`` for ``.../Pulumi.prod.yaml``."""
    return Path(path).name.removeprefix("Pulumi.").removesuffix(".yaml").removesuffix(".yml")


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file (bounded, strict reading)."""
    source = str(path)
    doc = parse_yaml(read_text(path, what="stack"), source=source, what="stack")
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise SpecError(Issue("config", "a stack file needs a top-level 'config:' mapping"), source=source)
    config: dict[str, Any] = doc["config"]
    return config


def read_stack(path: str | Path, *, root: str | Path | None = None, config: dict[str, Any] | None = None) -> Stack:
    """Read a stack file and validate its fleet (inline, files, or both).

    Args:
        path: ``stacks/Pulumi.<stack>.yaml``.
        root: the project directory ``gpufleet:fleetFiles`` is relative to (default: the stack's
            project, see :func:`gpufleet.project.find_project`).
        config: the file's ``config:`` mapping (:func:`read_config`) when the caller has read it.

    Raises:
        SpecError: the stack file, a fleet file or the merged fleet does not validate.
    """
    path = Path(path)
    source = str(path)
    config = read_config(path) if config is None else config
    if FLEET_CONFIG not in config and FLEET_FILES_CONFIG not in config:
        raise SpecError(Issue(f"config.{FLEET_CONFIG}", "is required",
                              f"the fleet object: sites, training, inference (or {FLEET_FILES_CONFIG}: "
                              "files holding it)"), source=source)
    known = (FLEET_CONFIG, FLEET_FILES_CONFIG, *PROGRAM_CONFIG_KEYS)
    unknown = sorted(k for k in config if k.startswith("gpufleet:") and k not in known)
    if unknown:
        raise SpecError([Issue(f"config.{k}", "unknown gpufleet setting", ", ".join(known)) for k in unknown],
                        source=source)
    files: tuple[Path, ...] = ()
    if FLEET_FILES_CONFIG in config:
        base = Path(root) if root is not None else _project_dir(path)
        files = tuple(expand_fleet_files(config[FLEET_FILES_CONFIG], base, source=source))
        spec = merge_fleet(config.get(FLEET_CONFIG), files, base, source=source, base_dir=path.parent)
    else:
        spec = parse_fleet(config[FLEET_CONFIG], source=source, base_dir=path.parent)
    return Stack(name=stack_name(path), file=path, spec=spec, config=config, fleet_files=files)


def load_stack(path: str | Path, *, root: str | Path | None = None) -> tuple[str, FleetSpec]:
    """The stack name and validated fleet of a stack file (:func:`read_stack`)."""
    stack = read_stack(path, root=root)
    return stack.name, stack.spec


def fleet_from_config(fleet: Any, fleet_files: Any, *, source: str, root: str | Path | None = None,
                      base_dir: str | Path | None = None) -> FleetSpec:
    """The fleet the Pulumi program reads from its config: ``gpufleet:fleet`` (parsed, or None) and
    ``gpufleet:fleetFiles`` (parsed, or None), the files read by the program itself.

    Args:
        root: the project directory (default: :data:`PROJECT_ROOT`, else the project around the
            working directory, which is the project directory under ``pulumi up``).
        base_dir: the stack files' directory, which a service's ``history`` file is relative to.
    """
    if fleet_files is None:
        if fleet is None:
            raise SpecError(Issue(f"config.{FLEET_CONFIG}", "is required",
                                  f"the fleet object, or {FLEET_FILES_CONFIG}"), source=source)
        return parse_fleet(fleet, source=source, base_dir=base_dir)
    base = Path(root) if root is not None else program_root()
    files = expand_fleet_files(fleet_files, base, source=source)
    return merge_fleet(fleet, files, base, source=source, base_dir=base_dir)


def program_root() -> Path:
    """The project directory of a running program (see :data:`PROJECT_ROOT`)."""
    from gpufleet.project import find_project_file

    given = PROJECT_ROOT.get()
    if given is not None:
        return given
    found = find_project_file(Path.cwd())
    return found.parent if found is not None else Path.cwd()


def _project_dir(stack_file: Path) -> Path:
    from gpufleet.project import find_project

    return find_project(stack_file).file.parent


# --- fleetFiles ------------------------------------------------------------------------------------


def fleet_patterns(value: Any, *, source: str) -> list[str]:
    """The patterns of ``gpufleet:fleetFiles``: a non-empty list of relative paths or globs that stay
    inside the project directory."""
    if not isinstance(value, list) or not value:
        raise SpecError(Issue(_FILES_LOC, f"must be a list of paths or globs, got {show(value)}",
                              "e.g. [fleet/prod/*.yaml], relative to the directory of Pulumi.yaml"), source=source)
    issues = []
    for i, pattern in enumerate(value):
        loc = f"{_FILES_LOC}[{i}]"
        if not isinstance(pattern, str) or not pattern.strip():
            issues.append(Issue(loc, f"must be a path or glob, got {show(pattern)}", "e.g. fleet/prod/*.yaml"))
        elif (pattern.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", pattern)
              or ".." in PurePosixPath(pattern.replace("\\", "/")).parts):
            issues.append(Issue(loc, f"{pattern!r} is outside the project directory",
                                "a path relative to the directory of Pulumi.yaml, without '..'"))
    if issues:
        raise SpecError(issues, source=source)
    return list(value)


def expand_fleet_files(value: Any, root: Path, *, source: str) -> list[Path]:
    """The files ``gpufleet:fleetFiles`` names, under the project directory ``root``, in merge order.

    Raises:
        SpecError: a bad pattern, a glob matching no file, a missing file, a file outside ``root``,
            or too many files.
    """
    patterns = fleet_patterns(value, source=source)
    base = root.resolve()
    files: list[Path] = []
    seen: set[Path] = set()
    issues = []
    for i, pattern in enumerate(patterns):
        loc = f"{_FILES_LOC}[{i}]"
        if _MAGIC.search(pattern):
            try:
                matches = sorted(p for p in base.glob(pattern) if not p.is_dir())
            except (ValueError, OSError) as exc:
                issues.append(Issue(loc, f"{pattern!r} is not a usable glob: {exc}", "e.g. fleet/prod/*.yaml"))
                continue
            if not matches:
                issues.append(Issue(loc, f"{pattern!r} matches no file under {base}",
                                    "a glob relative to the directory of Pulumi.yaml"))
                continue
        else:
            matches = [base / pattern]
            if not matches[0].exists():
                issues.append(Issue(loc, f"no such file {pattern!r} under {base}",
                                    "a path relative to the directory of Pulumi.yaml"))
                continue
        for match in matches:
            real = match.resolve()
            if not real.is_relative_to(base):
                issues.append(Issue(loc, f"{match} leads outside the project directory {base} (to {real})",
                                    "fleet files inside the project directory"))
            elif real not in seen:
                seen.add(real)
                files.append(match)
    if len(files) > MAX_FLEET_FILES:
        issues.append(Issue(_FILES_LOC, f"names {len(files):,} files", f"at most {MAX_FLEET_FILES:,}"))
    if issues:
        raise SpecError(issues, source=source)
    return files


def merge_fleet(inline: Any, files: list[Path] | tuple[Path, ...], root: Path, *, source: str,
                base_dir: str | Path | None = None) -> FleetSpec:
    """Merge the inline fleet object with the fleet files and validate the result (see the module
    docstring for the rules); errors in files name the file and the line. A service's ``history``
    file is read relative to ``base_dir`` (the stack files' directory), wherever it is declared."""
    parts: list[_Part] = []
    if inline is not None:
        if not isinstance(inline, dict):
            raise SpecError(Issue("fleet", f"must be a mapping with sites, training and inference, got {show(inline)}"),
                            source=source)
        parts.append(_Part("fleet", inline))
    total = 0
    for file in files:
        text = read_text(file, what="fleet file")
        total += len(text)
        if total > MAX_FLEET_BYTES:
            raise SpecError(Issue(_FILES_LOC, f"the fleet files hold over {MAX_FLEET_BYTES:,} bytes",
                                  f"at most {MAX_FLEET_BYTES:,} bytes in all"), source=source)
        label = _relative(file, root)
        data, lines = _parse_fleet_file(text, label)
        if not isinstance(data, dict):
            raise SpecError(Issue(f"{label}:1", f"a fleet file holds a mapping of sites, training, inference, "
                                                f"got {show(data)}", ", ".join(FleetSpec.model_fields)),
                            source=source)
        parts.append(_Part(label, data, lines))
    merged, origins = _merge(parts, source)
    try:
        return parse_fleet(merged, source=source, base_dir=base_dir)
    except SpecError as exc:
        raise SpecError([_locate(issue, parts, origins) for issue in exc.issues], source=source) from None


_PARSED_FILES: dict[tuple[str, str], tuple[Any, Lines]] = {}
_PARSED_FILES_KEPT = 16


def _parse_fleet_file(text: str, label: str) -> tuple[Any, Lines]:
    """A fleet file's YAML with its line marks, parsed once per process for the same label and
    content (sha256): ``gpufleet preview`` validates the stack, then its program reads the same
    files (about 0.5 s per parse of a 500-service fleet). Only what parsed is kept (a refusal is
    raised again, worded the same); nothing downstream mutates the parsed data."""
    key = (label, hashlib.sha256(text.encode()).hexdigest())
    found = _PARSED_FILES.get(key)
    if found is None:
        found = parse_yaml_lines(text, source=label, what="fleet file")
        while len(_PARSED_FILES) >= _PARSED_FILES_KEPT:
            del _PARSED_FILES[next(iter(_PARSED_FILES))]
        _PARSED_FILES[key] = found
    return found


def _relative(file: Path, root: Path) -> str:
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(file)


@dataclass(frozen=True)
class _Part:
    """One source of fleet entries: the inline object (``lines`` None) or one file."""

    label: str
    data: dict[str, Any]
    lines: Lines | None = None

    def where(self, path: tuple[int | str, ...], text: str) -> str:
        """``file:line: path`` for a field of a file (the nearest enclosing value's line)."""
        if self.lines is None:
            return text
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return f"{self.label}:{self.lines[path[:end]]}: {text}"
        return f"{self.label}: {text}"


_Origins = dict[tuple[str, int], tuple[_Part, int]]
"""(list key, merged index) → (part, index in that part's list); scalars under (key, -1)."""


def _merge(parts: list[_Part], source: str) -> tuple[dict[str, Any], _Origins]:
    merged: dict[str, Any] = {}
    origins: _Origins = {}
    named: dict[str, tuple[str, str]] = {}  # "site:x" / "workload:x" → where first declared
    issues: list[Issue] = []
    for part in parts:
        for key, value in part.data.items():
            if key in _LIST_KEYS and isinstance(value, list):
                items: list[Any] = merged.setdefault(key, [])
                for j, item in enumerate(value):
                    origins[(key, len(items))] = (part, j)
                    items.append(item)
                    name = item.get("name") if isinstance(item, dict) else None
                    if not isinstance(name, str):
                        continue
                    kind = "site" if key == "sites" else "workload"
                    here = part.where((key, j, "name"), f"{key}[{j}].name")
                    if f"{kind}:{name}" in named:
                        issues.append(Issue(here, f"duplicate {kind} name {name!r} (also {named[f'{kind}:{name}'][1]})",
                                            "each site, and each training run or service, declared once across "
                                            "gpufleet:fleet and the fleet files"))
                    else:
                        named[f"{kind}:{name}"] = (part.label, here)
            elif key in merged:
                first = origins[(key, -1)][0]
                issues.append(Issue(part.where((key,), key), f"{key} is set again (also in {first.label})",
                                    "each setting once across gpufleet:fleet and the fleet files"))
            else:
                merged[key] = value
                origins[(key, -1)] = (part, -1)
    if issues:
        raise SpecError(issues, source=source)
    return merged, origins


_HEAD = re.compile(r"^fleet\.([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\"([^\"]*)\"\]")


def _locate(issue: Issue, parts: list[_Part], origins: _Origins) -> Issue:
    """An issue of the merged fleet, placed in the part (and line) its field came from."""
    head = _HEAD.match(issue.loc)
    if head is None:
        return issue
    key, index = head.group(1), head.group(2)
    origin = origins.get((key, int(index))) if index is not None else origins.get((key, -1))
    if origin is None:
        return issue
    part, j = origin
    path: list[int | str] = [key] if j < 0 else [key, j]
    rest = issue.loc[head.end():]
    for step in _STEP.finditer(rest):
        name, number, quoted = step.groups()
        path.append(int(number) if number is not None else (name if name is not None else quoted))
    inner = (f"{key}[{j}]" if j >= 0 else key) + rest
    if part.lines is None:
        return issue
    return Issue(part.where(tuple(path), inner), issue.message, issue.hint)


# --- config size -----------------------------------------------------------------------------------


def config_env_bytes(config: Mapping[str, str]) -> int:
    """Bytes of ``PULUMI_CONFIG=<json>`` and its NUL, as the engine (and ``gpufleet preview``'s pack
    process) builds it from the config map (``namespace:key`` → text, objects as JSON text)."""
    return len(f"{CONFIG_ENV}=".encode()) + len(json.dumps(dict(config)).encode()) + 1


def check_config_size(config: Mapping[str, str], *, source: str) -> str | None:
    """Refuse a config that cannot travel in ``PULUMI_CONFIG``; a warning from
    :data:`CONFIG_WARN_SHARE` of the limit (None below it).

    Raises:
        SpecError: the config is over :data:`MAX_ARG_STRLEN` (exit 2), naming its biggest key.
    """
    size = config_env_bytes(config)
    if size < CONFIG_WARN_SHARE * MAX_ARG_STRLEN:
        return None
    biggest = max(config, key=lambda k: len(json.dumps(config[k]))) if config else FLEET_CONFIG
    share = size / MAX_ARG_STRLEN
    move = (f"move the fleet into files: {FLEET_FILES_CONFIG}: [fleet/<stack>/*.yaml] beside Pulumi.yaml "
            f"(see {FLEET_DOCS})")
    if size > MAX_ARG_STRLEN:
        raise SpecError(Issue(
            f"config.{biggest}",
            f"the stack's config is {size:,} bytes as Pulumi passes it ({CONFIG_ENV}), over Linux's "
            f"{MAX_ARG_STRLEN:,}-byte limit on one environment variable (MAX_ARG_STRLEN): neither the "
            "program nor the policy pack could start (`Argument list too long`)", move), source=source)
    return (f"warning: the stack's config is {size:,} bytes as Pulumi passes it ({CONFIG_ENV}), {share:.0%} of "
            f"Linux's {MAX_ARG_STRLEN:,}-byte limit; past it no preview can start: {move}")


def size_warning(stack: Stack, project: str = "gpufleet") -> str | None:
    """:func:`check_config_size` as a warning only (``gpufleet plan``, which starts no process)."""
    values, _ = pulumi_config(stack.config, project)
    try:
        return check_config_size(values, source=str(stack.file))
    except SpecError as exc:
        return f"warning: {exc.issues[0].message}; {exc.issues[0].hint}"


def pulumi_config(config: Mapping[str, Any], project: str) -> tuple[dict[str, str], list[str]]:
    """A stack file's ``config:`` as the Pulumi CLI passes it to a program: ``namespace:key`` → text
    (objects and lists as JSON), and notes on keys that cannot be passed (encrypted secrets)."""
    values: dict[str, str] = {}
    notes: list[str] = []
    for key, value in sorted(config.items()):
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            notes.append(f"{full} is an encrypted secret; it cannot be decrypted offline and was not set")
            continue
        values[full] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return values, notes


__all__ = [
    "CONFIG_WARN_SHARE",
    "MAX_ARG_STRLEN",
    "MAX_FLEET_BYTES",
    "MAX_FLEET_FILES",
    "PROJECT_ROOT",
    "Stack",
    "check_config_size",
    "config_env_bytes",
    "expand_fleet_files",
    "fleet_from_config",
    "fleet_patterns",
    "load_stack",
    "merge_fleet",
    "program_root",
    "pulumi_config",
    "read_config",
    "read_stack",
    "size_warning",
    "stack_name",
]

"""Several stacks in one command: which stacks, where each one's files go, and one exit code for all.

``gpufleet preview``, ``gpufleet diff`` and ``gpufleet deploy`` take ``--stack`` more than once, or a
directory (every ``Pulumi.*.yaml`` in it, by name). :func:`expand_stacks` turns those arguments into
an ordered list of :class:`StackRef`; a stack is known by its name (``Pulumi.<name>.yaml``), so two
files with the same name are refused (their reports would overwrite each other).

The combined exit code is the worst of the stacks' by :data:`EXIT_SEVERITY`: bad input (2) before an
internal fault (1), before blocked (3), before could-not-run (4), before ok (0). Bad input ranks
first because it is the one a change's author must fix and it stays the same on a re-run; any other
code a stack ends with (a child killed by a signal) counts as an internal fault.

Nothing here imports Pulumi.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpufleet.errors import (
    EXIT_BAD_INPUT,
    EXIT_BLOCKED,
    EXIT_INTERNAL,
    EXIT_NOT_CHECKED,
    EXIT_OK,
    Issue,
    SpecError,
)
from gpufleet.stackfile import stack_name

STACK_GLOB = "Pulumi.*.yaml"
"""The stack files a directory argument stands for."""

EXIT_SEVERITY: tuple[int, ...] = (EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_BLOCKED, EXIT_NOT_CHECKED, EXIT_OK)
"""Exit codes from worst to best: the combined code of several stacks is the first one any has."""

RESULT_WORDS = {EXIT_OK: "pass", EXIT_INTERNAL: "internal fault", EXIT_BAD_INPUT: "bad input",
                EXIT_BLOCKED: "blocked", EXIT_NOT_CHECKED: "could not run"}
"""What each exit code means, as the summary tables say it."""


@dataclass(frozen=True)
class StackRef:
    """One stack of a multi-stack run.

    Attributes:
        name: the stack's name, from its file name (``Pulumi.<name>.yaml``).
        path: the stack file as given (or found in a directory).
    """

    name: str
    path: Path


def is_many(args: Sequence[str | Path]) -> bool:
    """Whether ``--stack`` arguments ask for a multi-stack run: more than one, or a directory."""
    return len(args) > 1 or any(Path(a).is_dir() for a in args)


def expand_stacks(args: Iterable[str | Path], *, flag: str = "--stack", missing_ok: bool = False) -> list[StackRef]:
    """The stacks named by ``--stack`` arguments, in the order given (a directory's by file name).

    The same file given twice counts once.

    Args:
        args: stack files and directories holding ``Pulumi.*.yaml`` files.
        flag: the flag's name, for error locations.
        missing_ok: a path that does not exist is kept (``gpufleet diff``: a stack the change deletes).

    Raises:
        SpecError: a path that does not exist, a directory without stack files, or two stacks with
            the same name (exit 2); every problem is listed.
    """
    issues: list[Issue] = []
    found: list[StackRef] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            files = sorted(p for p in path.glob(STACK_GLOB) if p.is_file())
            if not files:
                issues.append(Issue(flag, f"directory {str(path)!r} holds no {STACK_GLOB} file",
                                    "a directory of stack files, or stack files"))
            found.extend(StackRef(stack_name(p), p) for p in files)
        elif path.exists() or missing_ok:
            found.append(StackRef(stack_name(path), path))
        else:
            issues.append(Issue(flag, f"no such stack file or directory: {str(path)!r}",
                                "an existing stack file (stacks/Pulumi.<stack>.yaml) or directory"))
    unique: list[StackRef] = []
    by_name: dict[str, StackRef] = {}
    for ref in found:
        seen = by_name.get(ref.name)
        if seen is None:
            by_name[ref.name] = ref
            unique.append(ref)
        elif _same_file(seen.path, ref.path):
            continue
        else:
            issues.append(Issue(flag, f"two stacks are named {ref.name!r}: {str(seen.path)!r} and {str(ref.path)!r}",
                                "stack files with distinct names (each stack's report is named after it)"))
    if issues:
        raise SpecError(issues)
    return unique


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return str(a) == str(b)


def policy_config_for(stack: StackRef, *, every: Path | None, per_stack_dir: Path | None) -> Path | None:
    """The policy config one stack runs with: ``every`` for all stacks, or ``<dir>/<stack>.json``
    from ``per_stack_dir`` when that file exists (the ``policies/config/<stack>.json`` convention)."""
    if every is not None:
        return every
    if per_stack_dir is not None:
        candidate = per_stack_dir / f"{stack.name}.json"
        return candidate if candidate.is_file() else None
    return None


def check_policy_config_flags(every: Path | None, per_stack_dir: Path | None) -> None:
    """Refuse ``--policy-config`` together with ``--policy-config-dir``, or a directory that is not one.

    Raises:
        SpecError: exit 2, naming the flag.
    """
    if every is not None and per_stack_dir is not None:
        raise SpecError(Issue("--policy-config-dir", "cannot be used with --policy-config",
                              "one config for every stack (--policy-config) or one per stack (--policy-config-dir)"))
    if per_stack_dir is not None and not per_stack_dir.is_dir():
        raise SpecError(Issue("--policy-config-dir", f"{str(per_stack_dir)!r} is not a directory",
                              "a directory of <stack>.json files, e.g. policies/config"))


def worst_exit(codes: Iterable[int]) -> int:
    """The combined exit code: the worst of ``codes`` by :data:`EXIT_SEVERITY` (0 when empty)."""
    rank = {code: i for i, code in enumerate(EXIT_SEVERITY)}
    worst = EXIT_OK
    for code in codes:
        code = code if code in rank else EXIT_INTERNAL
        if rank[code] < rank[worst]:
            worst = code
    return worst


def result_word(code: int | None) -> str:
    """``pass``, ``blocked``, ``bad input``… for an exit code; ``not run`` for a stack never started."""
    if code is None:
        return "not run"
    return RESULT_WORDS.get(code, f"internal fault (exit {code})")

"""The demand histories a backtest replays: a CSV per service, or one CSV for a one-service stack.

``--history DIR`` holds ``<service>.csv`` for every inference service of the stack (a missing one,
or a CSV naming no service of the stack, is bad input); ``--history FILE.csv`` is the history of a
stack with exactly one inference service. Each CSV is read by :func:`gpufleet.forecast.read_history`
(bounded, strict: ``date,peak_tokens_per_s`` rows, errors naming ``file:line``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from gpufleet.errors import Issue, SpecError
from gpufleet.forecast import read_history

History = list[tuple[dt.date, float]]


def read_histories(path: Path, services: Sequence[str]) -> dict[str, History]:
    """Each service's history, read from ``path`` (a directory or one CSV).

    Raises:
        SpecError: a missing or extra file, or an unreadable CSV (``file:line``); every problem
            found, in one error.
    """
    issues: list[Issue] = []
    files: dict[str, Path] = {}
    if not services:
        raise SpecError(Issue("--stack", "the stack has no inference service to backtest",
                              "a stack with at least one entry under inference"))
    if path.is_dir():
        found = {p.stem: p for p in sorted(path.glob("*.csv"))}
        for name in services:
            if name in found:
                files[name] = found[name]
            else:
                issues.append(Issue("--history", f"{path} has no {name}.csv for service {name}",
                                    f"one <service>.csv per inference service: {', '.join(services)}"))
        for stem, p in found.items():
            if stem not in services:
                issues.append(Issue("--history", f"{p} names no inference service of the stack",
                                    ", ".join(f"{s}.csv" for s in services)))
    elif len(services) == 1:
        files[services[0]] = path
    else:
        issues.append(Issue("--history", f"{path} is one file, but the stack has {len(services)} inference "
                                         f"services ({', '.join(services)})",
                            "a directory holding <service>.csv for each"))
    histories: dict[str, History] = {}
    for name, file in files.items():
        try:
            histories[name] = read_history(file)
        except SpecError as exc:
            issues += exc.issues
    if issues:
        raise SpecError(issues)
    return histories


__all__ = ["History", "read_histories"]

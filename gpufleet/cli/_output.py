"""Shared rendering helpers for the commands: one console, JSON output, number formatting."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A Rich console; wide enough for plan tables when output is not a terminal."""
    return Console(stderr=stderr, width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def print_json(data: Any) -> None:
    """Stable JSON on stdout (sorted keys are not used: key order is part of the contract)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")


def _default(value: Any) -> Any:
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def fmt_num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def fmt_sci(value: float) -> str:
    return f"{value:.3e}"

"""Helpers for the backtest tests: the fixture stacks and a step history written to a CSV."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "backtest"
EXAMPLE = REPO / "docs" / "examples" / "backtest"

FIRST = dt.date(2025, 1, 6)
STEP_ON = dt.date(2025, 6, 2)
LAST = dt.date(2025, 8, 25)


def step_points(before: float = 6000.0, after: float = 15000.0) -> list[tuple[dt.date, float]]:
    """Weekly peaks (Mondays) from 2025-01-06 to 2025-08-25: ``before`` until 2025-05-26, ``after`` from 2025-06-02."""
    out = []
    day = FIRST
    while day <= LAST:
        out.append((day, before if day < STEP_ON else after))
        day += dt.timedelta(days=7)
    return out


def write_csv(path: Path, points: list[tuple[dt.date, float]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("date,peak_tokens_per_s\n" + "".join(f"{d},{p:g}\n" for d, p in points), encoding="utf-8")
    return path

"""Writes the synthetic demand history of the ``gpufleet backtest`` worked case (docs/runway.md).

One service, ``chat-70b``: a weekly peak (tokens/s) over two years whose monthly growth accelerates
from 5 % to 25 %: 5 % a month for the first twelve months, rising evenly to 25 % over the next six,
then 25 % a month for the last six. Each week's peak carries a little seeded noise (a log-normal
factor, σ = 3 %), so a fit has residuals to work with, as it would on real traffic.

Deterministic: the same seed writes the same bytes (``tests/backtest/test_backtest_docs.py`` re-runs
it and compares with the committed CSV).

    python docs/examples/backtest/generate_history.py [--out docs/examples/backtest/history/chat-70b.csv]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
from pathlib import Path

START = dt.date(2025, 1, 6)
"""The first week (a Monday)."""
WEEKS = 104
START_PEAK_TOKENS_PER_S = 20_000.0
DAYS_PER_MONTH = 365.25 / 12
NOISE_SIGMA = 0.03
SEED = 14

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "history" / "chat-70b.csv"


def growth_per_month(month: float) -> float:
    """Monthly growth ``month`` months after the start: 5 %, ramping to 25 % over months 12–18."""
    ramp = min(1.0, max(0.0, (month - 12.0) / 6.0))
    return 0.05 + 0.20 * ramp


def history() -> list[tuple[dt.date, int]]:
    """(week, peak tokens/s) for every week, growth integrated day by day."""
    rng = random.Random(SEED)
    log_level = math.log(START_PEAK_TOKENS_PER_S)
    out: list[tuple[dt.date, int]] = []
    for week in range(WEEKS):
        day = START + dt.timedelta(days=7 * week)
        noise = rng.gauss(0.0, NOISE_SIGMA)
        out.append((day, round(math.exp(log_level + noise))))
        for d in range(7):  # growth over the week, at the rate of each day
            month = (7 * week + d) / DAYS_PER_MONTH
            log_level += math.log1p(growth_per_month(month)) / DAYS_PER_MONTH
    return out


def render() -> str:
    lines = ["date,peak_tokens_per_s"] + [f"{day.isoformat()},{peak}" for day, peak in history()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(), encoding="utf-8")
    print(f"wrote {args.out} ({WEEKS} weeks)")


if __name__ == "__main__":
    main()

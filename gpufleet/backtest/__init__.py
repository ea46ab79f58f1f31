"""``gpufleet backtest``: would a plan have seen the crunch coming? A demand history, replayed.

* :mod:`gpufleet.backtest.history`: the histories (a CSV per service, or one CSV), read strictly;
* :mod:`gpufleet.backtest.replay`: one service under one strategy, month by month (pure);
* :mod:`gpufleet.backtest.report`: every service under both strategies, side by side (pure).

The CLI is :mod:`gpufleet.cli.backtest`; the method and a worked case are in docs/runway.md.
"""

from __future__ import annotations

from gpufleet.backtest.history import read_histories
from gpufleet.backtest.replay import Outcome, ServiceFacts, Strategy, replay, strategies
from gpufleet.backtest.report import BACKTEST_SCHEMA_VERSION, BacktestReport, run_backtest

__all__ = ["BACKTEST_SCHEMA_VERSION", "BacktestReport", "Outcome", "ServiceFacts", "Strategy", "read_histories",
           "replay", "run_backtest", "strategies"]

"""The CLI's entry point: lazy commands and exit codes, whichever way a command sets them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import pytest

from gpufleet import cli as cli_module

Run = Callable[..., tuple[int, str, str]]


@click.command()
@click.pass_context
def _exits_three(ctx: click.Context) -> None:
    click.echo("blocked")
    ctx.exit(3)


def test_ctx_exit_code_reaches_the_shell(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    original = cli_module._LazyGroup.get_command

    def get_command(self: Any, ctx: click.Context, name: str) -> click.Command | None:
        return _exits_three if name == "exits-three" else original(self, ctx, name)

    monkeypatch.setattr(cli_module._LazyGroup, "get_command", get_command)
    code, out, _ = run_cli("exits-three")
    assert (code, out) == (3, "blocked\n")


def test_unknown_command_is_bad_input(run_cli: Run) -> None:
    code, _, err = run_cli("destroy")
    assert code == 2 and "No such command 'destroy'" in err


def test_help_lists_every_command(run_cli: Run) -> None:
    code, out, _ = run_cli("--help")
    assert code == 0
    for name in ("backtest", "catalog", "deploy", "diff", "place", "plan", "preflight", "preview", "size"):
        assert name in out

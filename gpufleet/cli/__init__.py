"""The ``gpufleet`` command line: one module per command, loaded only when that command runs.

Commands are thin: parse flags, call the core, render. Heavy imports (scipy, pulumi, cloud SDKs)
happen inside the command that needs them, so ``gpufleet --help`` stays instant.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
import sys
from types import FrameType

import click

from gpufleet.errors import EXIT_INTERNAL, GpufleetError
from gpufleet.heap import collect_less_often, exit_without_teardown

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as shells report Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143

# command name -> "module:attribute" of a click.Command. Add a command by adding a line here.
COMMANDS: dict[str, str] = {
    "size": "gpufleet.cli.size:size",
    "catalog": "gpufleet.cli.catalog:catalog",
    "plan": "gpufleet.cli.plan:plan",
    "place": "gpufleet.cli.place:place",
    "preview": "gpufleet.cli.preview:preview",
    "diff": "gpufleet.cli.diff:diff",
    "preflight": "gpufleet.cli.preflight:preflight",
    "backtest": "gpufleet.cli.backtest:backtest",
    "runway": "gpufleet.cli.runway:runway",
    "deploy": "gpufleet.cli.deploy:deploy",
    "fleet": "gpufleet.cli.fleet:fleet",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, target in COMMANDS.items() if _module_exists(target))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _module_exists(target):
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


def _module_exists(target: str) -> bool:
    return importlib.util.find_spec(target.split(":")[0]) is not None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpufleet")
def cli() -> None:
    """gpufleet: capacity planning as code for GPU fleets.

    Size a fleet from declared demand, place it under power and quota limits, deploy it with
    Pulumi, and block plans that cannot carry the forecast.

    Exit codes: 0 ok, 1 internal fault, 2 bad input, 3 blocked (infeasible or a mandatory
    policy violation), 4 some checks could not run.
    """


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SystemExit unwinds every `finally` and context manager: the policy pack child is stopped and
    # temporary directories are removed before the process exits.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: maps gpufleet's typed errors to exit codes.

    SIGTERM and SIGINT clean up (child processes, temporary files) and exit 143 / 130.
    """
    signal.signal(signal.SIGTERM, _terminate)
    collect_less_often()  # one command, then exit: see gpufleet.heap
    try:
        # Without standalone mode click *returns* the code of ctx.exit(n) instead of raising.
        result = cli.main(args=argv, prog_name="gpufleet", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort as exc:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_INTERRUPTED if isinstance(exc.__context__, KeyboardInterrupt) else EXIT_INTERNAL)
    except KeyboardInterrupt:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as exc:
        # Wrong flags or flag values: bad input.
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GpufleetError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)


def run() -> None:
    """The ``gpufleet`` console script (and ``python -m gpufleet``): :func:`main`, then the process
    ends without freeing a preview's heap object by object (:func:`gpufleet.heap.exit_without_teardown`;
    seconds for a fleet of hundreds of services). Exit codes are :func:`main`'s."""
    try:
        main()
        code = 0  # main always exits; kept for type checkers
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # sys.exit("message"): Python prints it and exits 1
            print(exc.code, file=sys.stderr)
            code = 1
    exit_without_teardown(code)

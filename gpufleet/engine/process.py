"""The policy pack as a process, started the way ``pulumi preview --policy-pack DIR`` starts it.

The ``pulumi-analyzer-policy-python`` shim runs ``python -u -m pulumi.policy <engine-address> .``
with the pack directory as working directory (``PULUMI_CONFIG``, ``PULUMI_PROJECT``,
``PULUMI_STACK`` and ``PULUMI_DRY_RUN`` in its environment) and reads the port the pack prints as
its first line on stdout. ``pulumi_policy`` parses the engine address but never dials it, so no
engine server is needed. The interpreter is the pack's own virtualenv (``policies/venv``, built from
``policies/requirements.txt``, which installs gpufleet), as Pulumi runs it, else the one running
gpufleet, with a note (:func:`pack_python`).

Only the standard library is imported here; the gRPC client is :mod:`gpufleet.engine.client`.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from gpufleet.errors import EXIT_INTERNAL, GpufleetError
from gpufleet.names import CONFIG_NAMESPACE

NO_ENGINE_ADDRESS = "127.0.0.1:0"
"""Passed where Pulumi passes its engine's address: pulumi_policy parses the argument, never dials it."""


class PolicyEngineError(GpufleetError):
    """The policy pack could not be started or did not answer (an internal fault, exit 1)."""

    exit_code = EXIT_INTERNAL


def pack_python(pack_dir: str | Path) -> tuple[str, str | None]:
    """The interpreter the engine runs the pack with, and a note when it is not the pack's own.

    Pulumi runs a Python pack from the virtualenv its ``PulumiPolicy.yaml`` names
    (``runtime.options.virtualenv``, relative to the pack directory; built by ``pulumi install``
    from the pack's ``requirements.txt``). When that virtualenv does not exist, this interpreter
    (the one running gpufleet) stands in, and the note says so.
    """
    pack = Path(pack_dir)
    venv = pack / _virtualenv_option(pack)
    for candidate in (venv / "bin" / "python", venv / "Scripts" / "python.exe"):
        if candidate.is_file():
            return str(candidate), None
    return sys.executable, (f"the policy pack ran with {sys.executable}: its virtualenv {venv} is not built "
                            f"(build it as `pulumi install` does: cd {pack} && python -m venv "
                            f"{venv.name} && {venv.name}/bin/pip install -r requirements.txt)")


def pack_file(pack_dir: Path) -> dict[str, Any]:
    """The pack's ``PulumiPolicy.yaml`` as a mapping ({} when missing or unreadable): the one reader
    of it, for the runtime options here and the version the engine reports."""
    import yaml

    try:
        doc = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _virtualenv_option(pack_dir: Path) -> str:
    """``runtime.options.virtualenv`` of the pack's ``PulumiPolicy.yaml`` (default ``venv``)."""
    doc = pack_file(pack_dir)
    runtime = doc.get("runtime")
    options = runtime.get("options") if isinstance(runtime, dict) else None
    name = options.get("virtualenv") if isinstance(options, dict) else None
    return name if isinstance(name, str) and name else "venv"


class PackProcess:
    """A policy pack process: start it, learn its port, keep its stderr, stop it.

    Args:
        pack_dir: the directory holding ``PulumiPolicy.yaml``.
        python: the interpreter to run the pack with (default: the pack's own virtualenv, as Pulumi
            runs it, else this one; see :func:`pack_python` and :attr:`note`).
        stack, project, stack_config: passed as ``PULUMI_STACK``, ``PULUMI_PROJECT`` and
            ``PULUMI_CONFIG`` (a JSON object of ``"<namespace>:<key>": value``), as the engine does.
        startup_timeout: seconds to wait for the pack to print its port.
    """

    def __init__(
        self,
        pack_dir: str | Path,
        *,
        python: str | None = None,
        stack: str = "dev",
        project: str = CONFIG_NAMESPACE,
        stack_config: Mapping[str, Any] | None = None,
        dry_run: bool = True,
        startup_timeout: float = 60.0,
    ) -> None:
        self.pack_dir = Path(pack_dir)
        self.python, self.note = (python, None) if python else pack_python(self.pack_dir)
        self.stack = stack
        self.project = project
        self.stack_config = dict(stack_config or {})
        self.dry_run = dry_run
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._threads: list[threading.Thread] = []
        self._first_line: list[str] = []
        self._got_line = threading.Event()

    @property
    def argv(self) -> list[str]:
        """The command line, as the ``pulumi-analyzer-policy-python`` shim builds it."""
        return [self.python, "-u", "-m", "pulumi.policy", NO_ENGINE_ADDRESS, "."]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
        env.update({
            "PULUMI_PROJECT": self.project,
            "PULUMI_STACK": self.stack,
            "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
            "PULUMI_ORGANIZATION": "organization",
            "PYTHONUNBUFFERED": "1",
        })
        if self.stack_config:
            env["PULUMI_CONFIG"] = json.dumps(self.stack_config)
        return env

    def launch(self) -> None:
        """Start the pack process without waiting for it (it boots while the caller works);
        :meth:`start` then waits for its port. Stop it with :meth:`close` in every case.

        Raises:
            PolicyEngineError: no pack there, or it cannot be started.
        """
        if self.process is not None:
            return
        if not (self.pack_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyEngineError(f"no policy pack at {self.pack_dir} (PulumiPolicy.yaml missing)")
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                self.argv, cwd=self.pack_dir, env=self.environment(),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise PolicyEngineError(f"cannot start the policy pack with {self.python}: {exc}") from exc
        first_line = self._first_line = []
        got_line = self._got_line = threading.Event()
        self._drain(self.process.stderr, self._stderr.append)

        def read_stdout(stream: IO[bytes]) -> None:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if not got_line.is_set():
                    first_line.append(line)
                    got_line.set()
            got_line.set()

        t = threading.Thread(target=read_stdout, args=(self.process.stdout,), daemon=True)
        t.start()
        self._threads.append(t)

    def start(self) -> int:
        """Start the pack (unless :meth:`launch` did) and wait for the port it listens on (on 127.0.0.1).

        Raises:
            PolicyEngineError: no pack there, it cannot be started, or it printed no port in time.
        """
        if self.port is not None:
            return self.port
        self.launch()
        assert self.process is not None
        first_line, got_line = self._first_line, self._got_line
        if not got_line.wait(self.startup_timeout) or not first_line or not first_line[0].strip().isdigit():
            try:  # stdout closed: the pack is exiting; wait for its code
                code = self.process.wait(timeout=5) if got_line.is_set() else self.process.poll()
            except subprocess.TimeoutExpired:
                code = None
            self.close()
            state = f"exited with code {code}" if code is not None else f"printed no port in {self.startup_timeout:g} s"
            raise PolicyEngineError(f"the policy pack at {self.pack_dir} {state}"
                                    + (f": {first_line[0]!r}" if first_line and first_line[0] else "")
                                    + self.stderr_tail())
        self.port = int(first_line[0].strip())
        return self.port

    def _drain(self, stream: Any, sink: Any) -> None:
        def pump() -> None:
            for raw in iter(stream.readline, b""):
                sink(raw.decode("utf-8", "replace").rstrip("\n"))

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        self._threads.append(t)

    def stderr_tail(self, lines: int = 15) -> str:
        """The last lines the pack wrote to stderr, ready to append to an error message."""
        tail = list(self._stderr)[-lines:]
        return ("\n--- policy pack stderr ---\n" + "\n".join(tail)) if tail else ""

    @property
    def stderr(self) -> str:
        return "\n".join(self._stderr)

    def close(self) -> None:
        """Stop the pack process (terminate, then kill after 5 s)."""
        proc, self.process, self.port = self.process, None, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()


__all__ = ["NO_ENGINE_ADDRESS", "PackProcess", "PolicyEngineError", "pack_python"]

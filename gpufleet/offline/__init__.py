"""Run the Pulumi program of a stack offline, under Pulumi's official mocks, and record what it builds.

This module is the edge of the core that may import Pulumi (lazily, inside functions), so
``import gpufleet.offline`` stays cheap and works without the ``pulumi`` extra installed.

:func:`run_program` is what ``gpufleet preview``, the policy-pack tests and the benchmarks build on:

* it reads ``stacks/Pulumi.<stack>.yaml`` and sets every config key the way the Pulumi CLI would
  (objects and lists as JSON text, scalars as text), so the program reads them with
  ``pulumi.Config``;
* it installs a :class:`pulumi.runtime.Mocks` subclass that answers resources and data-source
  calls deterministically (each cloud's fake ids and answers are in
  ``gpufleet/clouds/<cloud>/mocks.py``) and records every registered resource:
  type, name, URN, parent URN, provider reference and inputs as plain JSON with the camelCase keys
  the engine sees;
* it runs the program of the stack's Pulumi project (``Pulumi.yaml``'s ``main:``, else its
  ``__main__.py``; see :mod:`gpufleet.project`) with :mod:`runpy` inside
  ``pulumi.runtime.stack.run_pulumi_func``, which waits for every outstanding registration;
* every run happens in its own thread, in a fresh :class:`contextvars.Context` with its own event
  loop, so settings, config and the root stack never leak between runs (and a caller that is itself
  running an event loop is not disturbed): tests and a CLI can run many stacks in one process.

:func:`run_function` does the same for a Python callable instead of a program file (component unit
tests). Stacks that set no ``gpufleet:sshPublicKey`` get a placeholder key for the offline run only,
and :attr:`OfflineRun.notes` says so when a resource received it.

One job per module: :mod:`~gpufleet.offline.records` (what a run recorded),
:mod:`~gpufleet.offline.recorder` (the mocks and the recording monitor),
:mod:`~gpufleet.offline.cloud_mocks` (the per-cloud seam), :mod:`~gpufleet.offline.runner`
(config, isolation, running). Nothing here needs credentials or the network. The API
(``run_program``, ``run_function``, ``OfflineRun``, ``RecordedResource``, ``RecordedCall``) is
stable; new fields get defaults.

Design choice: ``run_pulumi_func`` and ``MockMonitor.RegisterResource`` are SDK internals (the
public ``@pulumi.runtime.test`` decorator only waits for one output). The SDK version is pinned in
``pyproject.toml`` and ``tests/program/test_offline_runner.py`` fails loudly if either changes shape.
"""

from __future__ import annotations

from gpufleet.offline.recorder import answer_call
from gpufleet.offline.records import UNKNOWN, OfflineRun, RecordedCall, RecordedResource
from gpufleet.offline.runner import read_stack_config, run_function, run_program

__all__ = [
    "UNKNOWN",
    "OfflineRun",
    "RecordedCall",
    "RecordedResource",
    "answer_call",
    "read_stack_config",
    "run_function",
    "run_program",
]

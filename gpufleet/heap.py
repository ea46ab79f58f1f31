"""How often CPython's cyclic garbage collector runs in the processes that hold a whole stack.

A Pulumi program keeps every resource's outputs alive until the run ends: the Python SDK holds
about 1,600 tracked objects per registered resource (2.8 million at 1,740 resources, measured with
``gc.get_objects(2)`` during ``benchmarks/preview_floor_bench.py``'s 200-service fleet). With
CPython's default thresholds (a young collection every 700 allocations) the collector also runs a
full collection each time that heap has grown by a quarter, and each one walks all of it: for the
200-service fleet, 16 full collections took 7.2 of the floor program's 13.3 s, and for 500
services about 60% of the program's run. The policy pack, which reads every resource of the stack
at once, and ``gpufleet preview``, which runs the program in its own process, hold the same heap.

:func:`collect_less_often` makes young collections run every
:data:`YOUNG_COLLECTION_EVERY_ALLOCATIONS` allocations instead (mypy sets 200,000 for its builds,
for the same reason). Cyclic garbage is still collected; the peak memory of the 500-service
preview stayed within 2% (measured). The program (``__main__.py``), the pack
(``policies/__main__.py``) and the ``gpufleet`` command each call it once, at their start;
:func:`collecting_less_often` is for code that runs a program inside a longer-lived process
(:func:`gpufleet.offline.run_program`) and puts the thresholds back afterwards.

At exit, CPython frees that heap object by object: 3.3 s after the 500-service preview had
written its report, 5 s for the floor program of the same fleet (measured). A command that has
finished has nothing left to free, so :func:`exit_without_teardown` runs the exit handlers
(``atexit``: temporary directories, worker pools, logging) and leaves; the ``gpufleet`` console
script ends that way (mypy ends its runs the same way, for the same reason).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_COLLECTION_EVERY_ALLOCATIONS = 100_000
"""Allocations (minus deallocations) of tracked objects between two young collections; CPython's
default is 700."""


def collect_less_often() -> None:
    """Raise the young generation's threshold to :data:`YOUNG_COLLECTION_EVERY_ALLOCATIONS` (never
    lower it); the older generations keep their thresholds."""
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_COLLECTION_EVERY_ALLOCATIONS), older, oldest)


@contextmanager
def collecting_less_often() -> Iterator[None]:
    """:func:`collect_less_often` inside the block, and the thresholds as they were after it,
    whatever the block set."""
    before = gc.get_threshold()
    collect_less_often()
    try:
        yield
    finally:
        gc.set_threshold(*before)


def exit_without_teardown(code: int) -> None:
    """Flush standard output and error, run the ``atexit`` handlers, and end the process with
    ``code`` without freeing its heap object by object. For a process's last statement only."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more can be written anyway
            pass
    atexit._run_exitfuncs()  # noqa: SLF001 - what interpreter shutdown runs first
    os._exit(code)


__all__ = ["YOUNG_COLLECTION_EVERY_ALLOCATIONS", "collect_less_often", "collecting_less_often",
           "exit_without_teardown"]

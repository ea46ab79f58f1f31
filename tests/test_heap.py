"""gpufleet.heap: the collector's thresholds while a program runs, and the console script's exit."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpufleet.heap import YOUNG_COLLECTION_EVERY_ALLOCATIONS, collect_less_often, collecting_less_often

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def default_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_young_collections_run_less_often_and_older_thresholds_stay(default_thresholds: tuple[int, int, int]) -> None:
    collect_less_often()
    assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY_ALLOCATIONS, 10, 10)


def test_a_higher_threshold_someone_set_is_kept(default_thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(500_000, 10, 10)
    collect_less_often()
    assert gc.get_threshold()[0] == 500_000


def test_the_block_gives_the_thresholds_back_whatever_it_set(default_thresholds: tuple[int, int, int]) -> None:
    with collecting_less_often():
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY_ALLOCATIONS
        gc.set_threshold(123_456, 5, 5)
    assert gc.get_threshold() == default_thresholds


def test_a_program_run_in_process_leaves_the_callers_collector_as_it_was(
        default_thresholds: tuple[int, int, int]) -> None:
    """The program raises the threshold for its run (``__main__.py`` calls collect_less_often);
    a test process or a tool that runs programs in-process gets its own thresholds back."""
    pytest.importorskip("pulumi")
    from gpufleet.offline import run_function

    seen: list[tuple[int, int, int]] = []
    run_function(lambda: seen.append(gc.get_threshold()))
    assert seen == [(YOUNG_COLLECTION_EVERY_ALLOCATIONS, 10, 10)]
    assert gc.get_threshold() == default_thresholds


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)


def test_exit_without_teardown_flushes_output_runs_exit_handlers_and_keeps_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "handler-ran"
    done = _python(f"""
        import atexit, pathlib, sys, tempfile
        from gpufleet.heap import exit_without_teardown
        scratch = tempfile.TemporaryDirectory()  # removed by its finalizer at exit
        print(scratch.name)
        atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text("yes"))
        sys.stdout.write("buffered, no newline")
        sys.stderr.write("to stderr")
        exit_without_teardown(3)
        print("never printed")
    """)
    assert done.returncode == 3
    scratch, rest = done.stdout.split("\n", 1)
    assert rest == "buffered, no newline"
    assert done.stderr == "to stderr"
    assert marker.read_text() == "yes"
    assert not Path(scratch).exists()


@pytest.mark.parametrize(("argv", "code"), [(["--version"], 0), (["size", "--accelerator", "v9x"], 2)])
def test_the_console_script_exits_with_mains_code(argv: list[str], code: int) -> None:
    done = subprocess.run([sys.executable, "-m", "gpufleet", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == code, done.stderr
    assert (done.stdout if code == 0 else done.stderr).strip()

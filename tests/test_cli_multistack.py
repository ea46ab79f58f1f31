"""What a multi-stack run prints once every stack has ended: each format on stdout, the summary, and
reports published only for stacks that produced one. Stacks here are tiny scripts, not previews."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gpufleet.cli._multistack import StackTask, run_stacks
from gpufleet.stackset import StackRef


def _task(tmp: Path, name: str, code: int, report: str, *, out_dir: Path | None = None,
          stderr: str = "") -> StackTask:
    """A stack whose child prints ``report`` to its report file and exits ``code``."""
    target = tmp / f"{name}.report"
    script = (f"import sys; sys.stderr.write({stderr!r}); "
              f"open({str(target)!r}, 'w').write({report!r}) if {code} in (0, 3) else None; sys.exit({code})")
    return StackTask(StackRef(name, Path(f"stacks/Pulumi.{name}.yaml")), [sys.executable, "-c", script], target,
                     out_dir / f"{name}.md" if out_dir else None)


def _sarif(rule: str) -> str:
    return json.dumps({"version": "2.1.0", "$schema": "x", "runs": [{"tool": {"driver": {"name": rule}}}]})


def test_sarif_on_stdout_is_one_log_with_a_run_per_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = [_task(tmp_path, "a", 0, _sarif("a")), _task(tmp_path, "b", 3, _sarif("b")),
             _task(tmp_path, "c", 2, "", stderr="gpufleet preview: step\nerror: c: 1 error in the input\n  - x: bad\n")]
    code = run_stacks("preview", tasks, jobs=3, fmt="sarif", workdir=tmp_path)
    out, err = capsys.readouterr()
    log = json.loads(out)
    assert code == 2
    assert [r["tool"]["driver"]["name"] for r in log["runs"]] == ["a", "b"] and log["version"] == "2.1.0"
    assert "[c] error: c: 1 error in the input\n[c]   - x: bad\n" in err  # progress lines left out
    assert "gpufleet preview: 3 stacks" in err  # the summary goes to stderr beside SARIF


def test_markdown_on_stdout_starts_with_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = [_task(tmp_path, "a", 0, "### a passes\n"), _task(tmp_path, "b", 1, "", stderr="error: boom | bang\n")]
    code = run_stacks("diff", tasks, jobs=1, fmt="markdown", workdir=tmp_path)
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[:6] == [
        "### gpufleet diff: 2 stacks, exit 1 (internal fault)", "", "| stack | result | detail |", "| --- | --- | --- |",
        "| `a` | ✅ pass |  |", "| `b` | ⚠️ internal fault | error: boom \\| bang |"]
    assert out.endswith("\n---\n\n### a passes\n")


def test_reports_are_published_only_for_stacks_that_made_one(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    tasks = [_task(tmp_path, "a", 3, "blocked report", out_dir=out_dir), _task(tmp_path, "b", 2, "", out_dir=out_dir)]
    code = run_stacks("preview", tasks, jobs=2, fmt="markdown", workdir=tmp_path)
    stdout = capsys.readouterr().out
    assert code == 2
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.md"] and (out_dir / "a.md").read_text() == "blocked report"
    assert f"reports in {out_dir}" in stdout and "exit 2 (bad input)" in stdout


def test_json_on_stdout_holds_every_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = [_task(tmp_path, "a", 0, json.dumps({"verdict": "pass"})), _task(tmp_path, "b", 4, "")]
    code = run_stacks("preview", tasks, jobs=2, fmt="json", workdir=tmp_path)
    doc = json.loads(capsys.readouterr().out)
    assert code == 4 and doc["exit_code"] == 4
    assert [(s["stack"], s["result"], s["report"]) for s in doc["stacks"]] == [
        ("a", "pass", {"verdict": "pass"}), ("b", "could not run", None)]
    assert doc["stacks"][1]["error"] == "preview exited 4"


class _Step:
    def __init__(self, text: str) -> None:
        self.text = text

    def poll(self) -> int | None:
        return None

    def stop(self) -> None:  # pragma: no cover
        pass

    def kill(self) -> None:  # pragma: no cover
        pass

    def status(self) -> str:
        return self.text


def test_on_a_terminal_progress_is_a_live_table_of_every_stack() -> None:
    import io

    from rich.console import Console

    from gpufleet.cli._multistack import Progress
    from gpufleet.parallel import Outcome

    progress = Progress("preview", ["aws-training", "dev", "prod"])
    screen = io.StringIO()
    progress.console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    with progress:
        progress.event(Outcome("aws-training", "running"))
        progress.event(Outcome("dev", "running"))
        progress.event(Outcome("aws-training", "done", 3, 12.5))
        progress.tick({"dev": _Step("gpufleet preview: running the program of stacks/Pulumi.dev.yaml")})
        frame = progress._table()
    lines = [line.rstrip() for line in _render(frame).splitlines()]
    assert lines[0].split()[:2] == ["aws-training", "blocked"]
    assert lines[1].split()[:2] == ["dev", "running"] and lines[1].endswith("running the program of stacks/Pulumi.dev.yaml")
    assert lines[2].split() == ["prod", "waiting"]
    assert "gpufleet preview: aws-training" not in screen.getvalue()  # no plain lines on a terminal


def _render(renderable: object) -> str:
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(renderable)
    return buffer.getvalue()

"""Input files from untrusted pull requests: bounded, strict, and refused with a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gpufleet.errors import SpecError
from gpufleet.inputs import MAX_INPUT_BYTES, parse_json, parse_yaml, parse_yaml_lines, read_text

REPO = Path(__file__).resolve().parents[1]


def _bomb(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    names = "abcdefghijklmnop"
    for prev, cur in zip(names[:levels], names[1:levels + 1]):
        text += f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]\n"
    return text


def _bounded(code: str, seconds: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child limited to 1 GiB of address space and ``seconds`` of wall time."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
    return subprocess.run([sys.executable, "-c", limit + code], cwd=REPO, capture_output=True, text=True,
                          timeout=seconds, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_alias_bomb_is_refused_in_bounded_time_and_memory() -> None:
    code = textwrap.dedent(f"""
        from gpufleet.inputs import parse_yaml
        from gpufleet.errors import SpecError
        try:
            parse_yaml({_bomb()!r}, source="bomb.yaml")
        except SpecError as exc:
            print(exc)
    """)
    out = _bounded(code)
    assert out.returncode == 0, out.stderr
    assert "aliases expand the document past" in out.stdout


def test_small_aliases_and_merge_keys_still_work() -> None:
    doc = parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\nlist: [*b, *b]\n", source="s")
    assert doc["other"] == {"x": 1, "y": 2} and doc["list"] == [{"x": 1}, {"x": 1}]


@pytest.mark.parametrize(("text", "expected"), [
    ("a: 1\nb: 2\na: 3\n", "duplicate key 'a' at lines 1 and 3"),
    ("1: x\n", "key at line 1 is not a string"),
    ("x: " + "[" * 5000 + "]" * 5000, "nested deeper than"),
    ("x: " + "9" * 5001, "integer of 5001 digits"),
    ("a: [1, 2\n", "not valid YAML at line"),
])
def test_yaml_refusals_name_the_problem(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_yaml(text, source="stack.yaml")
    assert expected in str(err.value) and "stack.yaml" in str(err.value)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"capacity-covers-demand": {},\n "capacity-covers-demand": {}}', "duplicate key 'capacity-covers-demand' at lines 1 and 2"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
    ('{"x": ' + "9" * 5001 + "}", "integer of 5001 digits"),
    ('{"x": 1,}', "not valid JSON at line 1"),
])
def test_json_refusals_name_the_problem(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_json(text, source="policy.json")
    assert expected in str(err.value)


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    link = tmp_path / "Pulumi.zero.yaml"
    link.symlink_to("/dev/zero")
    fifo = tmp_path / "Pulumi.fifo.yaml"
    os.mkfifo(fifo)
    for path, kind in ((link, "a device"), (fifo, "a FIFO"), (tmp_path, "a directory")):
        with pytest.raises(SpecError, match=f"is {kind}, not a regular file"):
            read_text(path, what="stack")


def test_large_files_and_bad_encodings_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_INPUT_BYTES + 1))
    with pytest.raises(SpecError, match=f"at most {MAX_INPUT_BYTES:,} bytes"):
        read_text(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"config:\n  name: caf\xe9\n")
    with pytest.raises(SpecError, match="not valid UTF-8 text: byte 0xe9 at line 2"):
        read_text(latin)


_BAD_YAML = [
    "a: 1\nb: 2\na: 3\n",
    "1: x\n",
    "x: {true: 1}\n",
    "x: " + "[" * 5000 + "]" * 5000,
    "x: " + "[" * 65 + "]" * 65,
    "x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 70)) + "  " * 70 + "v: 1\n",
    "x: " + "9" * 5001,
    "x: 0x" + "f" * 41,
    "a: [1, 2\n",
    "a: 1\n---\nb: 2\n",
    "a: *nowhere\n",
    "a: \x07bell\n",
    "a: 'unterminated\n",
    "a:\n\t- tab\n",
    "a: &r [*r]\n",
    _bomb(),
]


@pytest.mark.parametrize("text", _BAD_YAML, ids=range(len(_BAD_YAML)))
def test_libyaml_and_pure_python_refuse_alike(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether PyYAML has libyaml or not, the same text is refused with the same message."""
    import gpufleet.inputs as inputs

    messages = []
    for fast in (True, False):
        monkeypatch.setattr(inputs, "FAST_YAML", fast and inputs._C_SAFE_LOADER is not None)
        with pytest.raises(SpecError) as err:
            parse_yaml(text, source="stack.yaml")
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_libyaml_and_pure_python_read_every_stack_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every YAML file of the repository reads to the same document, with the same lines (or the same
    refusal), both ways."""
    import gpufleet.inputs as inputs

    files = sorted(p for pattern in ("stacks/*.yaml", "tests/fixtures/**/*.yaml", "policies/*.yaml", "*.yaml")
                   for p in REPO.glob(pattern))
    assert len(files) > 10
    for path in files:
        docs = []
        for fast in (True, False):
            monkeypatch.setattr(inputs, "FAST_YAML", fast and inputs._C_SAFE_LOADER is not None)
            try:
                docs.append(parse_yaml_lines(path.read_text(encoding="utf-8"), source=str(path)))
            except SpecError as exc:
                docs.append(str(exc))
        assert docs[0] == docs[1], path
    assert parse_yaml("n: 7.0e10\nm: 1e12\n", source="s") == {"n": 7.0e10, "m": 1e12}

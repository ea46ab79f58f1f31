"""Reading input files that may come from anyone: a stack file in a fork's pull request, a policy
config, a placement problem.

Every file gpufleet reads goes through :func:`read_text`, and every YAML or JSON document through
:func:`parse_yaml` / :func:`parse_json`, so one set of limits holds everywhere:

* only regular files (a symlink to ``/dev/zero``, a FIFO or a directory is refused before it is
  opened), at most :data:`MAX_INPUT_BYTES`, valid UTF-8;
* YAML: no alias may expand the document past :data:`MAX_NODES` nodes ("billion laughs"), no
  nesting deeper than :data:`MAX_DEPTH`, no duplicate keys (both lines are named), only string keys;
  numbers in exponent form (``7.0e10``) are numbers, as YAML 1.2 and Pulumi read them;
* JSON: the same depth bound and duplicate-key refusal;
* integers of more than :data:`MAX_INT_DIGITS` digits are refused (no physical quantity needs them).

Every refusal is a :class:`~gpufleet.errors.SpecError` (exit 2) naming the file, the place and the
limit. Nothing here imports Pulumi.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gpufleet.errors import Issue, SpecError

MAX_INPUT_BYTES = 4 * 1024 * 1024
"""Largest input file gpufleet reads (4 MiB; a 10,000-GPU stack is about 20 KB)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists a document may have."""
MAX_NODES = 200_000
"""Most YAML nodes a document may have once its aliases are expanded."""
MAX_INT_DIGITS = 40
"""Longest integer literal accepted (10**40 is far past any count or quantity gpufleet reads; the
schema then bounds each field to its own range)."""


def _refuse(source: str, loc: str, message: str, hint: str = "") -> SpecError:
    return SpecError(Issue(loc, message, hint), source=source)


def read_bytes(path: str | Path, *, what: str = "input", max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    Raises:
        SpecError: missing, unreadable, not a regular file, or too large (``loc`` is ``what``).
    """
    source = str(path)
    try:
        info = os.stat(path)  # follows symlinks: a link to /dev/zero is judged as /dev/zero
    except OSError as exc:
        raise _refuse(source, what, f"cannot read {source}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a file")
        raise _refuse(source, what, f"{source} is {kind}, not a regular file", "a regular file")
    if info.st_size > max_bytes:
        raise _refuse(source, what, f"{source} is {info.st_size:,} bytes", f"at most {max_bytes:,} bytes")
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise _refuse(source, what, f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # grew since stat
        raise _refuse(source, what, f"{source} is over {max_bytes:,} bytes", f"at most {max_bytes:,} bytes")
    return data


def decode(data: bytes, *, source: str, what: str = "input") -> str:
    """``data`` as UTF-8 text, or a SpecError naming the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _refuse(source, what, f"not valid UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}",
                      "a UTF-8 text file") from None


def read_text(path: str | Path, *, what: str = "input", max_bytes: int = MAX_INPUT_BYTES) -> str:
    """:func:`read_bytes` then :func:`decode`."""
    return decode(read_bytes(path, what=what, max_bytes=max_bytes), source=str(path), what=what)


# --- YAML ----------------------------------------------------------------------------------------------


class _StrictConstruction(yaml.constructor.SafeConstructor):
    """Refuses duplicate and non-string keys and over-long integers while building the document."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not (isinstance(key_node, ScalarNode) and key_node.tag == "tag:yaml.org,2002:str"):
                raise _BoundError(f"key at line {key_node.start_mark.line + 1} is not a string "
                                  f"({_describe(key_node)})", "string keys (quote it: \"1\": ...)")
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _BoundError(f"duplicate key {key!r} at lines {seen[key]} and {line}",
                                  "each key once per mapping")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = re.sub(r"[^0-9a-fA-F]", "", str(node.value))
        if len(digits) > MAX_INT_DIGITS:
            raise _BoundError(f"integer of {len(digits)} digits at line {node.start_mark.line + 1}",
                              f"at most {MAX_INT_DIGITS} digits")
        return super().construct_yaml_int(node)


class _BoundedLoader(_StrictConstruction, yaml.SafeLoader):
    """The pure-Python loader: bounds depth while composing, and decides (and words) every refusal."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _BoundError(f"nested deeper than {MAX_DEPTH} levels at line {mark.line + 1}",
                                  f"at most {MAX_DEPTH} levels of mappings and lists")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_C_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", None)


class _FastLoader(_StrictConstruction, _C_SAFE_LOADER or yaml.SafeLoader):  # type: ignore[misc]
    """libyaml's parser and composer (``CSafeLoader``) with the same construction checks. It only
    accepts: whatever it refuses or finds over a bound is read again by :class:`_BoundedLoader`,
    which words the refusal, so both paths refuse the same text with the same message."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)  # type: ignore[call-arg]  # CSafeLoader's, through the mixin


# YAML 1.1 reads ``7.0e10`` and ``1e12`` (no sign in the exponent, or no dot) as text; YAML 1.2, and
# so Pulumi reading the same stack file, reads them as numbers. Read them as Pulumi does.
for _loader in (_BoundedLoader, _FastLoader):
    _loader.add_constructor("tag:yaml.org,2002:int", _StrictConstruction.construct_yaml_int)  # type: ignore[type-var]
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
FAST_YAML = _C_SAFE_LOADER is not None
"""Whether documents are read with libyaml (PyYAML built with it); the pure-Python loader otherwise."""
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
"""Characters the pure-Python reader refuses (libyaml does not check them all)."""


class _BoundError(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _describe(node: Node) -> str:
    if isinstance(node, ScalarNode):
        return f"{node.tag.rsplit(':', 1)[-1]} {node.value!r}"
    return "a mapping" if isinstance(node, MappingNode) else "a list"


def _tree_bounds(root: Node) -> tuple[int, int]:
    """Nodes in the document once every alias is expanded, and its levels with aliases expanded,
    without expanding it (computed bottom-up over the shared nodes). A recursive alias expands
    without end: its size is past :data:`MAX_NODES`."""
    sizes: dict[int, tuple[int, int]] = {}
    entered: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes or (not done and id(node) in entered):
            continue  # done, or an ancestor still open (a cycle: its parent counts it below)
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            entered.add(id(node))
            stack.append((node, True))
            stack += [(c, False) for c in children if id(c) not in sizes]
            continue
        total = 1
        levels = 1
        for child in children:
            size, height = sizes.get(id(child), (MAX_NODES + 1, 1))  # not done: an open ancestor, a cycle
            total += size
            levels = max(levels, height + 1)
            if total > MAX_NODES:
                total = MAX_NODES + 1
                break
        sizes[id(node)] = (total, levels)
    return sizes[id(root)]


def _too_many_nodes() -> _BoundError:
    return _BoundError(f"aliases expand the document past {MAX_NODES:,} nodes",
                       "write the values out, or use fewer aliases")


def parse_yaml(text: str, *, source: str, what: str = "input") -> Any:
    """One YAML document, within the limits above (SpecError with the line otherwise).

    Read with libyaml when PyYAML has it (:data:`FAST_YAML`); a document libyaml refuses, or that
    breaks a bound, is read again by the pure-Python loader, which words the refusal, so the message
    is the same either way.
    """
    return _parse_yaml(text, source=source, what=what, lines=None)


Lines = dict[tuple[int | str, ...], int]
"""Where each value of a document starts: its path (keys and list indexes) → 1-based line."""


def parse_yaml_lines(text: str, *, source: str, what: str = "input") -> tuple[Any, Lines]:
    """:func:`parse_yaml`, plus the line of every mapping value and list item, by path (``()`` is the
    document). Values reached through an alias or a ``<<`` merge key are left out (an error there is
    placed at the nearest enclosing value)."""
    lines: Lines = {}
    return _parse_yaml(text, source=source, what=what, lines=lines), lines


def _record_lines(root: Node, lines: Lines) -> None:
    """Fill ``lines`` from the node tree (iterative; every node is visited once: the tree is
    bounded by :data:`MAX_NODES` before this runs, and shared alias nodes are not entered twice)."""
    seen: set[int] = set()
    stack: list[tuple[Node, tuple[int | str, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack += [(child, (*path, i)) for i, child in enumerate(node.value)]
        elif isinstance(node, MappingNode):
            stack += [(value, (*path, key.value)) for key, value in node.value
                      if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge"]


def _parse_yaml(text: str, *, source: str, what: str, lines: Lines | None) -> Any:
    if FAST_YAML and not _NON_PRINTABLE.search(text):
        found: Lines | None = None if lines is None else {}
        try:
            doc = _load(_FastLoader(text), found, bound_levels=True)
        except (_BoundError, yaml.YAMLError, RecursionError, ValueError, TypeError):
            pass  # refused: the pure-Python loader below says where and why
        else:
            if lines is not None and found is not None:
                lines.update(found)
            return doc
    try:
        # The reader refuses control characters as it is built; the composer bounds the depth.
        return _load(_BoundedLoader(text), lines, bound_levels=False)
    except _BoundError as exc:
        raise _refuse(source, what, exc.message, exc.hint) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise _refuse(source, what, f"not valid YAML at line {line}, column {column}: character "
                      f"#x{exc.character:04x} is not allowed", "printable text (no control characters)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise _refuse(source, what, f"not valid YAML at {where}: {getattr(exc, 'problem', None) or exc}") from None
    except (RecursionError, ValueError) as exc:
        raise _refuse(source, what, f"cannot read the YAML: {exc}") from None


def _load(loader: Any, lines: Lines | None, *, bound_levels: bool) -> Any:
    """Compose the document, bound its expanded size (and, for libyaml, which does not bound depth
    while composing, its levels with aliases expanded: more than the pure-Python loader counts, so it
    refuses more, never less), record its lines, build it."""
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size, levels = _tree_bounds(node)
        if size > MAX_NODES or (bound_levels and levels > MAX_DEPTH):
            raise _too_many_nodes()
        if lines is not None:
            _record_lines(node, lines)
        return loader.construct_document(node)
    finally:
        loader.dispose()


# --- JSON ----------------------------------------------------------------------------------------------


def parse_json(text: str, *, source: str, what: str = "input",
               syntax: Callable[[json.JSONDecodeError], SpecError] | None = None) -> Any:
    """A JSON document, refusing duplicate keys (both lines named), deep nesting and huge integers.

    ``syntax`` builds the error for malformed JSON, for commands whose messages have their own form.
    """
    depth = _json_depth(text)
    if depth > MAX_DEPTH:
        raise _refuse(source, what, f"nested deeper than {MAX_DEPTH} levels",
                      f"at most {MAX_DEPTH} levels of objects and arrays")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                lines = [text.count("\n", 0, m.start()) + 1
                         for m in re.finditer(r'"' + re.escape(json.dumps(key)[1:-1]) + r'"\s*:', text)]
                where = f" at lines {lines[0]} and {lines[1]}" if len(lines) >= 2 else ""
                raise _BoundError(f"duplicate key {key!r}{where}", "each key once per object")
            out[key] = value
        return out

    def integer(literal: str) -> int:
        if len(literal.lstrip("-")) > MAX_INT_DIGITS:
            raise _BoundError(f"integer of {len(literal.lstrip('-'))} digits", f"at most {MAX_INT_DIGITS} digits")
        return int(literal)

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_int=integer)
    except _BoundError as exc:
        raise _refuse(source, what, exc.message, exc.hint) from None
    except json.JSONDecodeError as exc:
        if syntax is not None:
            raise syntax(exc) from None
        raise _refuse(source, what, f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (RecursionError, ValueError) as exc:
        raise _refuse(source, what, f"cannot read the JSON: {exc}") from None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _json_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_yaml_file(path: str | Path, *, what: str = "input") -> Any:
    """Read and parse a YAML file with every bound above."""
    return parse_yaml(read_text(path, what=what), source=str(path), what=what)


def load_json_file(path: str | Path, *, what: str = "input") -> Any:
    """Read and parse a JSON file with every bound above."""
    return parse_json(read_text(path, what=what), source=str(path), what=what)

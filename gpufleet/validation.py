"""From pydantic errors and near-misses to :class:`~gpufleet.errors.Issue`: one field-path style, one
wording, for every model gpufleet validates (the fleet spec, the placement problem).

A field path reads as the data is written: ``fleet.inference[1].growth_per_month``; a key that is not
an identifier is quoted, ``sites[0].price_per_gpu_hour["p5.48xlarge"]``. Each issue says what is
wrong, shows the bad value, and where it can, what is allowed.

Pure: pydantic and the standard library only.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gpufleet.errors import Issue

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Union members (``int | str``) add their type's name to an error's location: not a field.
_UNION_TAGS = frozenset({"int", "float", "str", "list[str]", "constrained-int", "constrained-float"})
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


class StrictModel(BaseModel):
    """The base of every model gpufleet reads input into: an unknown field, a wrong type (text or a
    boolean where a number belongs), NaN or infinity is an error; a validated object is frozen.
    Field docstrings are the fields' descriptions (in ``model_json_schema()`` too)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True,
                              use_attribute_docstrings=True)


def format_loc(parts: Iterable[int | str], root: str = "") -> str:
    """A location as a field path below ``root``: ``pools[2].nodes``, ``quota_gpus.H100``,
    ``price_per_gpu_hour["p5.48xlarge"]``; ``(top level)`` for the document itself."""
    out = root
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out or "(top level)"


def show(value: Any) -> str:
    """A bad value as the message quotes it: strings quoted, the rest as JSON, cut at 80 characters."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def did_you_mean(word: str, options: Iterable[str], *, n: int = 3) -> str:
    """``"; did you mean 'a', 'b'?"`` for up to ``n`` close matches of ``word``, or ``""``."""
    close = difflib.get_close_matches(word, list(options), n=n, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def repeated(names: Sequence[str]) -> Iterator[tuple[int, int]]:
    """``(index, index of its first use)`` for every name used before, in order."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            yield i, first[name]
        first.setdefault(name, i)


def issues_from_validation(exc: ValidationError, model: type[BaseModel], *, root: str = "",
                           name_unknown: bool = True) -> list[Issue]:
    """One :class:`Issue` per pydantic error of validating ``model``, each with its field path.

    Args:
        exc: the error pydantic raised.
        model: the model that was validated (an unknown field's hint lists what it accepts).
        root: the path of the validated document, e.g. ``fleet`` (``""``: paths start at its fields).
        name_unknown: repeat an unknown field's name in the message (``unknown field 'powr_mw'``)
            besides its path; ``gpufleet place`` says only ``unknown field``.
    """
    issues: list[Issue] = []
    for err in exc.errors(include_url=False):
        parts = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS | {"[key]"}))
        kind = err["type"]
        value = err.get("input")
        ctx = err.get("ctx") or {}
        if kind == "extra_forbidden":
            message = f"unknown field {str(parts[-1])!r}" if name_unknown else "unknown field"
            issues.append(Issue(format_loc(parts, root), message, _allowed_fields(model, parts[:-1])))
        elif kind == "missing":
            issues.append(Issue(format_loc(parts, root), "is required"))
        elif kind == "finite_number" or (isinstance(value, float) and not math.isfinite(value)):
            issues.append(Issue(format_loc(parts, root), f"must be a finite number, got {value!r}",
                                "a finite number"))
        elif kind == "value_error":
            message = err["msg"].removeprefix("Value error, ")
            issues.append(Issue(format_loc(parts, root), f"{message} (got {show(value)})"))
        else:
            issues.append(Issue(format_loc(parts, root), f"{err['msg']}, got {show(value)}", _hint(kind, ctx)))
    return issues


def _hint(kind: str, ctx: Mapping[str, Any]) -> str:
    """What is allowed, for the error kinds where pydantic's message does not already say it all."""
    if "expected" in ctx:  # literals and enums
        return str(ctx["expected"])
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "")
        return f"a number {_BOUNDS[kind]} {bound:g}" if isinstance(bound, (int, float)) else f"a number {_BOUNDS[kind]} {bound}"
    if kind.startswith("int"):
        return "an integer"
    if kind.startswith("float"):
        return "a number"
    if kind == "string_too_short":
        return "a non-empty string"
    if kind == "string_type":
        return "a string"
    if kind == "too_short":
        return "a non-empty list" if ctx.get("min_length") == 1 else f"at least {ctx.get('min_length')} items"
    if kind == "list_type":
        return "a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "an object (a mapping of fields to values)"
    return ""


def _allowed_fields(model: type[BaseModel], parts: tuple[int | str, ...]) -> str:
    """The fields of the model found at ``parts`` below ``model``, for an unknown-field error."""
    current: Any = model
    for part in parts:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        current = _inner_model(field.annotation) if field is not None else None
        if current is None:
            return ""
    return ", ".join(current.model_fields)


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``list[X]`` or ``X | None``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


__all__ = ["StrictModel", "did_you_mean", "format_loc", "issues_from_validation", "repeated", "show"]

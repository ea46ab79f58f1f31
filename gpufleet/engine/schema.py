"""A JSON-schema validator for the subset of JSON Schema that policy config schemas use.

The Pulumi engine validates each policy's config against the schema the pack declares before the pack
runs; :func:`validate_json_schema` does the same here, and the pack's own config check calls it too.
A schema using a keyword outside the subset is refused rather than half-checked. Pure: no I/O, no
import beyond the standard library.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_ANNOTATIONS = frozenset({"description", "default", "title", "examples", "$comment", "$schema", "format",
                          "deprecated", "readOnly", "writeOnly"})
_CHECKED = frozenset({"type", "properties", "required", "additionalProperties", "propertyNames", "items",
                      "minItems", "maxItems", "enum", "const", "minimum", "maximum", "exclusiveMinimum",
                      "exclusiveMaximum", "minLength", "maxLength", "pattern", "minProperties",
                      "maxProperties", "uniqueItems"})


def validate_json_schema(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Every way ``value`` breaks ``schema``, as ``"<path>: <what is wrong>"`` lines (empty: valid).

    Supports ``type``, ``properties``, ``required``, ``additionalProperties``, ``propertyNames``,
    ``items``, ``minItems``/``maxItems``, ``uniqueItems``, ``enum``, ``const``, ``minimum``/``maximum``,
    ``exclusiveMinimum``/``exclusiveMaximum`` (numbers, as in draft 6 and later), ``minLength``/
    ``maxLength``, ``pattern``, ``minProperties``/``maxProperties``, and ignores annotations
    (``description``, ``default``, ...).

    Raises:
        ValueError: the schema uses a keyword outside that subset (a bug in the schema, not the value).
    """
    unknown = set(schema) - _CHECKED - _ANNOTATIONS
    if unknown:
        raise ValueError(f"schema at {path or '(root)'} uses unsupported keyword(s) {', '.join(sorted(unknown))}")
    where = path or "(root)"
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        kinds = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is_type(value, k) for k in kinds):
            return [f"{where}: must be {' or '.join(_TYPE_WORDS.get(k, k) for k in kinds)}, got {brief_json(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(v) for v in schema["enum"])
        errors.append(f"{where}: must be one of {allowed}, got {brief_json(value)}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: must be {json.dumps(schema['const'])}, got {brief_json(value)}")
    if _is_type(value, "number"):
        errors += _check_number(value, schema, where)
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: must have at most {schema['maxLength']} characters")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: must have at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: must have at most {schema['maxItems']} item(s)")
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            errors.append(f"{where}: items must be unique")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += validate_json_schema(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, Mapping):
        errors += _check_object(value, schema, path)
    return errors


_TYPE_WORDS = {"object": "an object", "array": "a list", "string": "a string", "number": "a number",
               "integer": "a whole number", "boolean": "true or false", "null": "null"}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "integer":
        return _is_type(value, "number") and float(value).is_integer()
    raise ValueError(f"unknown JSON schema type {kind!r}")


def _check_number(value: float, schema: Mapping[str, Any], where: str) -> list[str]:
    errors = []
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: must be at least {schema['minimum']:g}, got {value:g}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{where}: must be at most {schema['maximum']:g}, got {value:g}")
    for key, sign, word in (("exclusiveMinimum", 1, "greater than"), ("exclusiveMaximum", -1, "less than")):
        bound = schema.get(key)
        if bound is None:
            continue
        if isinstance(bound, bool):
            raise ValueError(f"{key} must be a number (draft 6+), not a boolean, at {where}")
        if not sign * (value - bound) > 0:
            errors.append(f"{where}: must be {word} {bound:g}, got {value:g}")
    return errors


def _check_object(value: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    where = path or "(root)"
    errors: list[str] = []
    props: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            errors.append(f"{_join(path, name)}: is required")
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append(f"{where}: must have at least {schema['minProperties']} entr(y/ies)")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(f"{where}: must have at most {schema['maxProperties']} entr(y/ies)")
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames")
    for key, item in value.items():
        sub = _join(path, key)
        if names is not None:
            errors += [e.replace(f"{sub}:", f"{sub} (name):", 1)
                       for e in validate_json_schema(key, names, sub)]
        if key in props:
            errors += validate_json_schema(item, props[key], sub)
        elif extra is False:
            allowed = ", ".join(sorted(props)) or "none"
            errors.append(f"{sub}: unknown property (allowed: {allowed})")
        elif isinstance(extra, Mapping):
            errors += validate_json_schema(item, extra, sub)
    return errors


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def brief_json(value: Any) -> str:
    """``value`` as JSON text of at most 60 characters (for error messages)."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["brief_json", "validate_json_schema"]

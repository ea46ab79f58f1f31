"""Flag types that refuse what the spec refuses: NaN, infinities, and values past a field's bounds.

A flag that stands for a spec field takes its bounds from that field (:func:`like`), so
``gpufleet size --params`` and ``params:`` in a stack accept exactly the same numbers.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

import click
from pydantic import BaseModel


class Number(click.ParamType):  # type: ignore[type-arg]
    """A finite float (or int) within optional bounds; the error names the bound."""

    def __init__(self, *, integer: bool = False, gt: float | None = None, ge: float | None = None,
                 lt: float | None = None, le: float | None = None) -> None:
        self.integer = integer
        self.name = "integer" if integer else "number"
        self.gt, self.ge, self.lt, self.le = gt, ge, lt, le

    def _bounds(self) -> str:
        parts = [f"> {self.gt:g}" if self.gt is not None else "", f">= {self.ge:g}" if self.ge is not None else "",
                 f"< {self.lt:g}" if self.lt is not None else "", f"<= {self.le:g}" if self.le is not None else ""]
        return " and ".join(p for p in parts if p) or "any finite number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number: float | int = value
        else:
            text = str(value).strip()
            try:
                number = int(text) if self.integer else float(text)
            except ValueError:
                self.fail(f"{value!r} is not {'a whole number' if self.integer else 'a number'}", param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"must be a finite number, got {value}", param, ctx)
        outside = ((self.gt is not None and not number > self.gt) or (self.ge is not None and not number >= self.ge)
                   or (self.lt is not None and not number < self.lt) or (self.le is not None and not number <= self.le))
        if outside:
            self.fail(f"{value} is out of range: must be {self._bounds()}", param, ctx)
        return number


def like(model: type[BaseModel], field: str) -> Number:
    """A :class:`Number` with the type and bounds of ``model.field`` (a number field of the spec)."""
    info = model.model_fields[field]
    bounds: dict[str, float] = {}
    for item in info.metadata:
        for key in ("gt", "ge", "lt", "le"):
            if getattr(item, key, None) is not None:
                bounds[key] = float(getattr(item, key))
    annotation = info.annotation
    integer = annotation is int or (getattr(annotation, "__args__", None) or (None,))[0] is int
    return Number(integer=integer, **bounds)


def finite(*, gt: float | None = None, ge: float | None = None, lt: float | None = None,
           le: float | None = None) -> Number:
    """A finite float flag with the given bounds (flags that are not spec fields)."""
    return Number(gt=gt, ge=ge, lt=lt, le=le)


class IsoDate(click.ParamType):  # type: ignore[type-arg]
    """A calendar date written ``YYYY-MM-DD`` (years 1900 to 9000), nothing else."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime.date):
            return value
        text = str(value).strip()
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError
            day = datetime.date.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not a date written YYYY-MM-DD (e.g. 2026-12-01)", param, ctx)
        if not 1900 <= day.year <= 9000:
            self.fail(f"{value} is out of range: a year from 1900 to 9000", param, ctx)
        return day

"""Demand forecasts with a range: quantiles, named scenarios, or a fitted history.

Pure apart from reading a history CSV in :func:`read_history` (bounded, through
:mod:`gpufleet.inputs`); no Pulumi. scipy is imported only by :func:`fit_history`.

An inference service states its monthly demand growth in one of three ways (exactly one):

* ``growth_per_month: 0.08``: a scalar; every quantile is that growth (p50 = p90);
* ``forecast: {p50: 0.06, p90: 0.15}``: growth at quantiles ``pNN`` (NN in 1..99); a quantile
  between two given ones is interpolated linearly, one outside them is refused (unless only one
  quantile is given: then it holds for all);
* ``history: data/chat.csv``: observed peaks (``date,peak_tokens_per_s``), fitted at stack load
  by :func:`fit_history` into the quantiles :data:`HISTORY_QUANTILES` (plus the plan's confidence),
  from the prediction interval of the peak at the service's lead time + horizon.

and may add named ``scenarios`` (``[{name: viral, growth_per_month: 0.3}]``), which the runway
report shows beside the quantiles. The fleet's ``plan_confidence`` (default ``p90``) picks the
quantile the plan sizes to: :func:`growth_at`.

After :func:`resolve_forecasts` (run by :func:`gpufleet.spec.parse_fleet`), a history service
carries its fitted quantiles in ``forecast``, so the Pulumi program, the CLI and the policy pack
(reading the components' demand props, where ``forecast`` and ``scenarios`` travel) see the same
numbers without the CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator

from gpufleet.errors import Issue, Issues, SpecError
from gpufleet.inputs import decode, read_bytes
from gpufleet.sizing import DAYS_PER_MONTH
from gpufleet.validation import StrictModel, show

if TYPE_CHECKING:
    from gpufleet.spec import FleetSpec

QUANTILE_PATTERN = r"^p([1-9][0-9]?)$"
"""A quantile key: ``p1`` .. ``p99`` (no ``p0``, ``p100``, leading zeros or other letters)."""
QUANTILE_HINT = "p1 .. p99, e.g. p50 or p90"


def _quantile_key(key: str) -> str:
    if not re.match(QUANTILE_PATTERN, key):
        raise ValueError(f"{key!r} is not a quantile key ({QUANTILE_HINT})")
    return key


QuantileKey = Annotated[str, AfterValidator(_quantile_key), WithJsonSchema(
    {"type": "string", "pattern": QUANTILE_PATTERN, "description": f"a quantile key: {QUANTILE_HINT}"})]
GrowthPerMonth = Annotated[float, Field(ge=0, le=10)]
"""Compound monthly growth as a fraction, up to 1,000 % a month."""
DEFAULT_CONFIDENCE = "p90"
"""The quantile a plan sizes to unless the fleet's ``plan_confidence`` says otherwise."""
HISTORY_QUANTILES = ("p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99")
"""The quantiles a fitted history is resolved into (with the plan's confidence): between them
:func:`growth_at` interpolates, so every ``pNN`` has a growth."""
MIN_HISTORY_POINTS = 3
"""Fewest observations a history fit accepts (two leave no degree of freedom for its spread)."""
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HISTORY_HEADER = ("date", "peak_tokens_per_s")


def quantile_level(key: str, *, loc: str = "confidence") -> int:
    """The NN of a ``pNN`` key.

    Raises:
        SpecError: ``key`` is not ``p1`` .. ``p99`` (``loc`` names the field or flag).
    """
    match = re.match(QUANTILE_PATTERN, key) if isinstance(key, str) else None
    if match is None:
        raise SpecError(Issue(loc, f"{key!r} is not a quantile", QUANTILE_HINT))
    return int(match.group(1))


class Scenario(StrictModel):
    """A named what-if growth, shown beside the quantiles (it does not change the plan)."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$",
                               description="lowercase letters, digits and '-', 2-40 characters")]
    """The scenario's name, e.g. ``viral`` (not a quantile key)."""
    growth_per_month: GrowthPerMonth
    """Compound monthly growth under this scenario."""

    @field_validator("name")
    @classmethod
    def _not_a_quantile(cls, name: str) -> str:
        if re.match(QUANTILE_PATTERN, name):
            raise ValueError(f"{name!r} reads as a quantile; name scenarios by what they are (viral, launch)")
        return name


class ForecastRange(StrictModel):
    """The range of a service's forecast: growth by quantile, and named scenarios.

    In the components' demand props these are resolved (a history already fitted); a service with
    only a scalar ``growth_per_month`` has an empty ``forecast``.
    """

    forecast: dict[QuantileKey, GrowthPerMonth] = Field(default_factory=dict)
    """Monthly growth at quantiles, e.g. ``{p50: 0.06, p90: 0.15}``; must not fall as the quantile rises."""
    scenarios: list[Scenario] = Field(default_factory=list)
    """Named what-if growths, e.g. ``[{name: viral, growth_per_month: 0.3}]``."""

    @field_validator("forecast")
    @classmethod
    def _rising(cls, forecast: dict[str, float]) -> dict[str, float]:
        ordered = sorted(forecast.items(), key=lambda kv: quantile_level(kv[0]))
        for (lo, g_lo), (hi, g_hi) in zip(ordered, ordered[1:]):
            if g_hi < g_lo:
                raise ValueError(f"growth falls from {lo} ({g_lo:g}) to {hi} ({g_hi:g}); a higher quantile "
                                 "is at least as much growth")
        return dict(ordered)

    @field_validator("scenarios")
    @classmethod
    def _unique(cls, scenarios: list[Scenario]) -> list[Scenario]:
        names = [s.name for s in scenarios]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scenario names must be unique, {', '.join(dupes)} repeated")
        return scenarios


class FleetForecast(StrictModel):
    """The fleet-wide forecast setting of a fleet spec."""

    plan_confidence: QuantileKey = DEFAULT_CONFIDENCE
    """The forecast quantile every service is sized to (``p1`` .. ``p99``; default ``p90``)."""


class ForecastSource(StrictModel):
    """Where a fleet spec's service takes its growth from: ``growth_per_month``, ``forecast`` or
    ``history`` (exactly one)."""

    history: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    """A CSV of observed peaks (``date,peak_tokens_per_s``, dates ``YYYY-MM-DD`` rising), a path inside
    the stack file's directory; its growth is fitted at load (``docs/runway.md``)."""

    @model_validator(mode="after")
    def _one_source(self) -> ForecastSource:
        given = [name for name, value in (("growth_per_month", getattr(self, "growth_per_month", None)),
                                          ("forecast", getattr(self, "forecast", None) or None),
                                          ("history", self.history)) if value is not None]
        if len(given) != 1:
            said = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of growth_per_month, forecast or history (given: {said})")
        return self


# --- growth at a quantile ----------------------------------------------------------------------------


def _get(load: Any, name: str) -> Any:
    return load.get(name) if isinstance(load, Mapping) else getattr(load, name, None)


def growth_at(load: Any, quantile: str) -> float:
    """The monthly growth of a service at ``quantile`` (``pNN``).

    ``load`` is a validated service (:class:`gpufleet.spec.InferenceSpec`), a component's demand
    props (:class:`gpufleet.spec.InferencePoolDemand`, or their dict): anything with
    ``forecast`` and ``growth_per_month``. With a ``forecast`` the growth is interpolated linearly
    between the given quantiles; else it is ``growth_per_month`` at every quantile.

    Raises:
        SpecError: ``quantile`` is not a quantile key, lies outside the forecast's quantiles (and
            more than one is given), or the service has no growth (a history not yet fitted).
    """
    level = quantile_level(quantile)
    forecast: Mapping[str, float] = _get(load, "forecast") or {}
    if not forecast:
        growth = _get(load, "growth_per_month")
        if growth is None:
            raise SpecError(Issue("forecast", "the service has no growth: its history is not fitted yet",
                                  "load the stack with gpufleet.stackfile.load_stack, which fits it"))
        return float(growth)
    points = sorted((quantile_level(k, loc=f"forecast.{k}"), float(g)) for k, g in forecast.items())
    if len(points) == 1:
        return points[0][1]
    lo, hi = points[0][0], points[-1][0]
    if not lo <= level <= hi:
        raise SpecError(Issue("forecast", f"{quantile} is outside the forecast's quantiles p{lo} .. p{hi}",
                              f"a quantile from p{lo} to p{hi}, or add {quantile} to the forecast"))
    for (l0, g0), (l1, g1) in zip(points, points[1:]):
        if l0 <= level <= l1:
            return g0 if l1 == l0 else g0 + (g1 - g0) * (level - l0) / (l1 - l0)
    raise AssertionError("unreachable")  # pragma: no cover


def quantiles_of(load: Any, confidence: str) -> list[str]:
    """The quantiles a report shows for a service: the declared forecast's, else p50 and p90; with
    ``confidence`` always among them, in rising order."""
    forecast: Mapping[str, float] = _get(load, "forecast") or {}
    declared = _get(load, "history") is None and forecast
    keys = set(forecast) if declared else {"p50", "p90"}
    return sorted(keys | {confidence}, key=quantile_level)


# --- history -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFit:
    """Compound growth fitted to observed peaks: ln(peak) = a + b·t, t in months (log-linear least
    squares), with the prediction interval of ln(peak) at the planning horizon.

    The quantiles come from the textbook prediction interval of a new observation in simple linear
    regression (Montgomery, Peck & Vining, *Introduction to Linear Regression Analysis*, §2.5;
    Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, §7.6): at t* = the last
    observation + ``horizon_months``, ln(peak) lies within
    ŷ(t*) ± t_{n−2}(q) · s · √(1 + 1/n + (t* − t̄)² / Σ(t − t̄)²), s² the residual variance. Each
    quantile of ln(peak) at t* is turned back into the monthly growth that reaches it from the fitted
    level at the last observation over ``horizon_months``: g(q) = exp(b + t_{n−2}(q) · se_pred / H) − 1.
    The p50 stays e^b − 1; the spread holds both the slope's uncertainty (grown to the horizon) and
    the month-to-month scatter of the peaks around the trend.

    Attributes:
        slope_per_month: b; the point estimate of growth is e^b − 1.
        slope_stderr: the standard error of b (0 when the points lie on one curve).
        dof: degrees of freedom of the residuals (points − 2).
        points: observations fitted.
        first_date, last_date: the history's span.
        peak_tokens_per_s: the last observed peak (not the fitted value: the owner's latest measurement).
        horizon_months: H, months from the last observation to the planning horizon (lead time +
            horizon).
        prediction_stderr: se_pred, the standard error of a new ln(peak) at the horizon.
        quantiles: growth at the quantiles asked for.
    """

    slope_per_month: float
    slope_stderr: float
    dof: int
    points: int
    first_date: datetime.date
    last_date: datetime.date
    peak_tokens_per_s: float
    horizon_months: float
    prediction_stderr: float
    quantiles: dict[str, float] = field(default_factory=dict)

    def growth_per_month(self, quantile: str) -> float:
        """Growth at ``quantile``: e^(b + t_q · se_pred / H) − 1, t_q the Student-t quantile with
        ``dof`` degrees of freedom (p50: e^b − 1); a falling trend is floored at 0 (planned flat)."""
        from scipy.stats import t as student_t  # type: ignore[import-untyped]

        level = quantile_level(quantile) / 100.0
        spread = (float(student_t.ppf(level, self.dof)) * self.prediction_stderr / self.horizon_months
                  if self.prediction_stderr > 0 else 0.0)
        return max(0.0, math.expm1(self.slope_per_month + spread))


def horizon_months(lead_time_days: float, horizon_days: float) -> float:
    """The months from today to the end of a plan's horizon: (lead time + horizon) / 30.4375."""
    return (lead_time_days + horizon_days) / DAYS_PER_MONTH


def fit_history(points: Sequence[tuple[datetime.date, float]], quantiles: Sequence[str] = (), *,
                horizon_months: float) -> HistoryFit:
    """Fit compound growth to ``points`` (date, peak tokens/s), dates rising, peaks positive, with its
    prediction interval ``horizon_months`` after the last point (:class:`HistoryFit`).

    Raises:
        SpecError: fewer than :data:`MIN_HISTORY_POINTS` points, dates not rising, a peak not
            positive and finite, a horizon not positive, or a quantile key that is not ``pNN``.
    """
    if len(points) < MIN_HISTORY_POINTS:
        raise SpecError(Issue("history", f"{len(points)} observation(s); a fit needs at least {MIN_HISTORY_POINTS}",
                              "more dated peaks"))
    if not (math.isfinite(horizon_months) and horizon_months > 0):
        raise SpecError(Issue("horizon_days", f"a forecast horizon of {horizon_months!r} months",
                              "lead_time_days + horizon_days > 0"))
    for (d0, _), (d1, _) in zip(points, points[1:]):
        if d1 <= d0:
            raise SpecError(Issue("history", f"date {d1} does not come after {d0}", "dates rising, each once"))
    if any(not (math.isfinite(p) and p > 0) for _, p in points):
        raise SpecError(Issue("history", "every peak must be a positive finite number", "peaks > 0"))
    first = points[0][0]
    ts = [(d - first).days / DAYS_PER_MONTH for d, _ in points]
    ys = [math.log(p) for _, p in points]
    n = len(points)
    t_mean, y_mean = sum(ts) / n, sum(ys) / n
    sxx = sum((t - t_mean) ** 2 for t in ts)
    slope = sum((t - t_mean) * (y - y_mean) for t, y in zip(ts, ys)) / sxx
    intercept = y_mean - slope * t_mean
    ssr = sum((y - intercept - slope * t) ** 2 for t, y in zip(ts, ys))
    variance = ssr / (n - 2)
    at = ts[-1] + horizon_months
    fit = HistoryFit(slope_per_month=slope, slope_stderr=math.sqrt(variance / sxx), dof=n - 2, points=n,
                     first_date=first, last_date=points[-1][0], peak_tokens_per_s=points[-1][1],
                     horizon_months=horizon_months,
                     prediction_stderr=math.sqrt(variance * (1 + 1 / n + (at - t_mean) ** 2 / sxx)))
    return dataclasses.replace(fit, quantiles={q: fit.growth_per_month(q) for q in quantiles})


def read_history(path: str | Path, *, loc: str = "history") -> list[tuple[datetime.date, float]]:
    """The observations of a history CSV: a ``date,peak_tokens_per_s`` header, then one row per
    observation (``YYYY-MM-DD``, a positive number), dates rising; blank lines and ``#`` comments
    are skipped.

    Raises:
        SpecError: at ``loc``, naming ``file:line``: missing or unreadable file, wrong header, a row
            without two fields, a date that does not parse, dates not rising, a peak that is not a
            positive finite number, or fewer than :data:`MIN_HISTORY_POINTS` rows.
    """
    source = str(path)
    try:
        text = decode(read_bytes(path, what=loc), source=source, what=loc)
    except SpecError as exc:
        raise SpecError([Issue(loc, f"history {i.message}", i.hint) for i in exc.issues]) from None

    def bad(line: int, message: str, hint: str) -> SpecError:
        return SpecError(Issue(loc, f"{source}:{line}: {message}", hint))

    rows: list[tuple[datetime.date, float]] = []
    header_seen = False
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not header_seen:
            if tuple(c.lower() for c in cells) != HISTORY_HEADER:  # the line itself is not echoed
                raise bad(line, "the first line is not the header 'date,peak_tokens_per_s'",
                          "a first line 'date,peak_tokens_per_s'")
            header_seen = True
            continue
        if len(cells) != 2:
            raise bad(line, f"{len(cells)} fields", "two fields: YYYY-MM-DD,peak tokens/s")
        day_text, peak_text = cells
        try:
            if not _DATE.match(day_text):
                raise ValueError
            day = datetime.date.fromisoformat(day_text)
        except ValueError:
            raise bad(line, f"date {show(day_text)} does not parse", "a date YYYY-MM-DD") from None
        try:
            peak = float(peak_text)
        except ValueError:
            raise bad(line, f"peak {show(peak_text)} is not a number", "a positive number of tokens/s") from None
        if not (math.isfinite(peak) and peak > 0):
            raise bad(line, f"peak {show(peak_text)} is not a positive finite number", "a positive number of tokens/s")
        if rows and day <= rows[-1][0]:
            what = "repeats" if day == rows[-1][0] else "comes before"
            raise bad(line, f"date {day} {what} the previous row's {rows[-1][0]}", "dates rising, each once")
        rows.append((day, peak))
    if len(rows) < MIN_HISTORY_POINTS:
        raise SpecError(Issue(loc, f"{source}: {len(rows)} observation(s); a fit needs at least "
                                   f"{MIN_HISTORY_POINTS}", "at least three dated peaks"))
    return rows


# --- resolution at load --------------------------------------------------------------------------------


def resolve_forecasts(spec: FleetSpec, *, root: str = "fleet", base_dir: str | Path | None = None,
                      source: str = "") -> FleetSpec:
    """``spec`` with every history fitted into ``forecast`` and every forecast checked against the
    plan's confidence.

    Args:
        base_dir: where relative ``history`` paths start (the stack file's directory; default the
            working directory).

    Raises:
        SpecError: every issue at once, each at its service's field path: a history that cannot
            be read or fitted, a fit past 1,000 % a month, ``plan_confidence`` outside a forecast's
            quantiles.
    """
    issues = Issues(source=source)
    confidence = spec.plan_confidence
    services = []
    for i, service in enumerate(spec.inference):
        loc = f"{root}.inference[{i}]"
        if service.history is not None:
            base = Path(base_dir or ".").resolve()
            path = base / service.history
            if Path(service.history).is_absolute() or not path.resolve().is_relative_to(base):
                issues.add(f"{loc}.history", f"{service.history!r} is not inside the stack file's directory {base}",
                           "a relative path below it, e.g. data/chat.csv (no absolute path, '..' or link out of it)")
                services.append(service)
                continue
            try:
                fit = fit_history(read_history(path, loc=f"{loc}.history"),
                                  sorted({*HISTORY_QUANTILES, confidence}, key=quantile_level),
                                  horizon_months=horizon_months(service.lead_time_days, service.horizon_days))
            except SpecError as exc:
                issues.items += [Issue(f"{loc}.history" if x.loc == "history" else x.loc, x.message, x.hint)
                                 for x in exc.issues]
                services.append(service)
                continue
            top = max(fit.quantiles.values())
            if top > 10:
                issues.add(f"{loc}.history", f"{path}: the fit gives {top:.0%} growth a month",
                           "a history of real peaks (at most 1,000 % a month)")
            services.append(service.model_copy(update={"forecast": fit.quantiles}))
            continue
        try:
            growth_at(service, confidence)
        except SpecError as exc:
            issues.add(f"{loc}.forecast", f"plan_confidence {exc.issues[0].message}", exc.issues[0].hint
                       + f", or set {root}.plan_confidence within the forecast's quantiles")
        services.append(service)
    issues.raise_if_any()
    return spec.model_copy(update={"inference": services})


__all__ = [
    "DEFAULT_CONFIDENCE",
    "FleetForecast",
    "HISTORY_QUANTILES",
    "QUANTILE_PATTERN",
    "ForecastRange",
    "ForecastSource",
    "GrowthPerMonth",
    "HistoryFit",
    "QuantileKey",
    "Scenario",
    "fit_history",
    "growth_at",
    "horizon_months",
    "quantile_level",
    "quantiles_of",
    "read_history",
    "resolve_forecasts",
]

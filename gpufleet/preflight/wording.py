"""What a cloud's preflight findings say: the judge's sentences in the provider's own terms.

The judge (:mod:`gpufleet.preflight.judge`) decides the same way for every cloud; the words differ
(EC2 "offers", Azure sizes are "available in zones", a GCP zone answers 404). Each cloud keeps its
words as data beside its reads, in ``gpufleet/clouds/<cloud>/preflight.yaml``, one
``str.format`` template per sentence; :func:`load_wording` reads them into a :class:`Wording`.
Pure: no SDK, no network (the file ships inside the package).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from importlib import resources

import yaml

WORDING_FILE = "preflight.yaml"


@dataclass(frozen=True, kw_only=True)
class Wording:
    """One cloud's sentences. Placeholders in braces are filled by the judge (listed per group).

    A template with a default need not be in the file; one left out that defaults to ``None`` is one
    the cloud never needs (a provider that cannot list a region's zones names no undeclared zone).
    """

    provider: str
    """How messages name the provider's API: ``EC2``, ``Azure``, ``GCP``."""
    machine: str
    """What one instance is called: ``node``, ``VM``."""

    # The API call(s) behind each kind of finding (a finding's ``check``).
    credentials_check: str
    """What finds the credentials (the check of a "not checked" finding)."""
    offering_check: str
    catalog_check: str
    quota_check: str
    reservation_check: str

    # Offerings. {itype} {zones} {region} {site} {zone} {missing} {offered} {reason} {restricted}
    # {gpu} {gpus} {nodes} {short}
    offered: str
    """The pool's type is offered in all its zones."""
    unoffered: str
    """Not offered in ``{missing}`` while offered in ``{offered}``; ends with the separator before
    "N nodes (G GPUs) are planned there"."""
    unoffered_anywhere: str | None = None
    """Offered in no zone at all (default: ``unoffered``)."""
    unlisted: str | None = None
    """The provider does not know the type in the region (default: ``unoffered_anywhere``)."""
    refused: str | None = None
    """The whole region refuses the type to this account (``{reason}``)."""
    restricted: str | None = None
    """Inserted as ``{restricted}`` when some of the missing zones refuse the type (``{zones}``)."""
    offering_failed: str
    """What an ``api_error`` of the offering read could not check."""
    zone_declared: str
    zone_undeclared: str | None = None
    same_gpu: str
    site_offers: str

    # Catalog agreement. {itype} {gpus} {gpu} {gib} {vcpus} {interfaces} {accelerators} {problems}
    catalog_agrees: str
    catalog_disagrees: str

    # Quotas. {name} {key} {region} {need} {limit} {free} {used} {unit} {parts} {short_units} {short}
    # {target} {room} {nodes} {itype} {gpus} {gpu}
    quota_ok: str
    quota_short: str
    quota_failed: str
    quota_unlisted: str = "the provider lists no {name} quota in {region}; check it by hand"
    quota_site_room: str
    quota_same_gpu: str | None = None
    quota_key_field: str
    """The details key that names the quota (``quota_code``, ``quota``, ``metric``)."""
    quota_used_field: str | None = None
    """The details key prefix for the quota's use (``current``, ``usage``), when the API reports it."""

    # Reservations. {name} {zone} {zones} {room} {total} {itype} {nodes} {pool} {problems} {short}
    # {warnings} {state} {quota} {need} {unit}
    reservation_noun: str
    """What a ``reservation_id`` names: ``capacity reservation``, ``reservation``, ..."""
    reservation_ok: str
    """The reservation can carry the pool."""
    reservation_scheduled: str = "reservation {name} has room for {nodes} x {itype} in {zone}, but {warnings}"
    """It can once it starts (a warning)."""
    reservation_short: str
    """It cannot (``{problems}``: why, joined by "; ")."""
    reservation_not_ready: str = "its state is {state}, not ready"
    """A problem: instances cannot launch into it now."""
    reservation_room: str = "it has room for {room} of {total}, the pool needs {nodes}"
    """A problem: too little room."""
    reservation_placement: str | None = None
    """A problem: it was made in placement ``{group}`` and the pool launches into ``{into}``."""
    reservation_no_placement: str | None = None
    """A warning: it was made in no placement, and the pool names ``{into}`` as its placement."""
    on_demand: str
    """The ``on_demand`` alternative to a reservation that cannot carry its pool (``{quota}``: the
    quota it would draw on and what is left of it, when the type's name says which)."""


WORDING_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Wording))


@cache
def load_wording(package: str) -> Wording:
    """The :class:`Wording` in ``package``'s ``preflight.yaml`` (e.g. ``gpufleet.clouds.aws``)."""
    text = resources.files(package).joinpath(WORDING_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{package}/{WORDING_FILE}: expected a mapping of sentence name to template")
    unknown = sorted(set(data) - set(WORDING_FIELDS))
    if unknown:
        raise ValueError(f"{package}/{WORDING_FILE}: unknown sentence(s) {', '.join(unknown)}")
    return Wording(**{str(k): str(v) for k, v in data.items()})

"""The pack's policies: names, descriptions, enforcement levels and config schemas.

Config follows Pulumi's policy-config format (``pulumi preview --policy-pack-config FILE``): a JSON
object keyed by policy name, each value an object with an optional ``enforcementLevel`` and the
policy's properties::

    {
      "capacity-covers-demand": {
        "enforcementLevel": "mandatory",
        "floors": {
          "chat-70b": {"peak_tokens_per_s": 60000, "growth_per_month": 0.1},
          "pretrain-8b": {"flops": 7.2e21, "deadline_days": 14}
        }
      },
      "power-within-envelope": {"max_utilization": 0.9}
    }

``floors`` (accepted by every policy that reads demand) maps a workload to demand fields named as
the fleet spec names them; its schema is generated from the spec's demand models. The engine fills in each property's ``default`` and validates the
properties against these schemas before the pack runs; the pack checks again (the engine does not
reject properties a schema does not name) and reports a broken config as a violation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpufleet.engine.schema import validate_json_schema
from gpufleet.policy.demand import FLOOR_MODELS, INFERENCE_DEFAULTS, NOT_IN_FLOORS
from gpufleet.shared_sites import POLICY_NAME as SHARED_POLICY
from gpufleet.spec import SLUG_PATTERN

_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_COUNT = {"type": "integer", "minimum": 0}
_POSITIVE_INT = {"type": "integer", "minimum": 1}


def _d(schema: Mapping[str, Any], text: str) -> dict[str, Any]:
    return {**schema, "description": text}


def _checkable(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema in the subset the engine's checker reads (``validate_json_schema``):
    ``$ref`` inlined, ``X | None`` as ``X``, and no ``required``, ``default`` or ``title``: a floor
    names only the fields it raises, and nothing is filled in for the ones it leaves out."""
    if "$ref" in schema:
        schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    if "anyOf" in schema:
        (member,) = [m for m in schema["anyOf"] if m.get("type") != "null"]
        schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **member}
    out = {k: v for k, v in schema.items() if k not in ("required", "default", "title", "$defs")}
    if "patternProperties" in out:  # keys of one pattern (a forecast's pNN): names checked, values alike
        ((pattern, values),) = out.pop("patternProperties").items()
        out.update(propertyNames={**out.get("propertyNames", {}), "pattern": pattern}, additionalProperties=values)
    for key in ("items", "additionalProperties"):  # a list's items, a mapping's values
        if isinstance(out.get(key), Mapping):
            out[key] = _checkable(out[key], defs)
    if "properties" in out:
        out["properties"] = {name: _checkable(prop, defs) for name, prop in out["properties"].items()}
    return out


def _floor_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for model in FLOOR_MODELS:
        schema = model.model_json_schema()
        for name, prop in schema["properties"].items():
            if name not in NOT_IN_FLOORS:
                properties.setdefault(name, _checkable(prop, schema.get("$defs", {})))
    return {
        "type": "object",
        "description": "A workload's demand floor: fields as the fleet spec names them. Inference: throughput, "
                       "growth, horizon and model shape; training: compute, deadline and MFU. Fields left out "
                       "come from the demand the stack's own resources declare.",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": properties,
    }


FLOOR_SCHEMA: dict[str, Any] = _floor_schema()
"""One workload's floor: the JSON schema of the spec's demand models (:data:`FLOOR_MODELS`)."""

FLOORS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Demand floors by workload name, owned by the capacity team. A workload must carry the "
                   "larger of its floor and the demand its resources declare; a floor naming a workload the "
                   "stack does not provision is a violation.",
    "default": {},
    "propertyNames": {"pattern": SLUG_PATTERN},
    "additionalProperties": FLOOR_SCHEMA,
}


UNKNOWN_VALUES_SETTING = "unknown_values"
"""The property of every checking policy that says how a deciding value unknown until apply is
reported: ``mandatory`` (the default: a blocking violation) or ``advisory``."""
UNKNOWN_VALUES_SCHEMA = _d({"type": "string", "enum": ["mandatory", "advisory"], "default": "mandatory"},
                           "how a deciding value that is unknown until apply is reported: mandatory (blocks, "
                           "the default) or advisory (the engine's \"can't run policy during preview\" note)")


@dataclass(frozen=True)
class PolicySpec:
    """Metadata of one policy: what the pack registers and the docs describe."""

    name: str
    description: str
    enforcement: str
    properties: dict[str, Any] = field(default_factory=dict)
    remediation: str = ""
    severity: str = "high"

    def validate(self, config: Mapping[str, Any] | None) -> list[str]:
        """Problems with this policy's config (properties only; ``enforcementLevel`` is the engine's)."""
        schema = {"type": "object", "properties": self.properties, "additionalProperties": False}
        given = {k: v for k, v in (config or {}).items() if k != "enforcementLevel"}
        return validate_json_schema(given, schema)

    def with_defaults(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """The config with each missing property set to its schema default."""
        out = {k: v["default"] for k, v in self.properties.items() if "default" in v}
        out.update({k: v for k, v in (config or {}).items() if k != "enforcementLevel"})
        return out


def _reads_demand(*, name: str, description: str, enforcement: str, remediation: str,
                  severity: str = "high", properties: Mapping[str, Any] | None = None) -> PolicySpec:
    """A policy that reads demand: besides its own properties it takes ``floors``."""
    return PolicySpec(name=name, description=description, enforcement=enforcement,
                      properties={"floors": FLOORS_SCHEMA, **(properties or {}), UNKNOWN_VALUES_SETTING: UNKNOWN_VALUES_SCHEMA},
                      remediation=remediation, severity=severity)


CAPACITY = _reads_demand(
    name="capacity-covers-demand",
    description="Each workload's provisioned capacity covers its forecast demand through the horizon, with "
                "headroom (inference: the autoscalers' maximum summed over its pools; training: its node count "
                "against the deadline).",
    enforcement="mandatory",
    remediation="Raise the node count or autoscaler maximum through the fleet spec (run `gpufleet plan`), not "
                "by hand; or, with the capacity team, lower the workload's floor in the policy config.",
    severity="critical",
)

ZONE_LOSS = _reads_demand(
    name="survives-zone-loss",
    description="An inference service's capacity left after losing the zones (and sites) it declares it "
                "survives still carries the forecast peak.",
    enforcement="mandatory",
    remediation="Spread the pools over more zones or sites, or raise their maximum, through the fleet spec.",
)

WARM = _reads_demand(
    name="warm-capacity-covers-boot-time",
    description="An inference service's autoscaler minimum keeps enough nodes running to absorb the demand "
                "growth while a new GPU node boots and loads the model.",
    enforcement="advisory",
    properties={
        "default_boot_minutes": _d({**_POSITIVE, "default": INFERENCE_DEFAULTS["boot_minutes"]},
                                   "boot and model-load minutes for services that declare none"),
    },
    remediation="Raise the autoscaler minimum, shorten boot (a warm pool, a smaller image), or lower the "
                "declared demand ramp.",
    severity="medium",
)

FABRIC = PolicySpec(
    name="training-fabric-complete",
    description="A multi-node training cluster attaches every fabric interface its instance type has (EFA "
                "interfaces, InfiniBand in one placement group, MRDMA or GPU NICs), sits in one zone, and "
                "launches into its compact placement.",
    enforcement="mandatory",
    properties={
        "min_nodes": _d({**_POSITIVE_INT, "default": 2}, "clusters of at least this many nodes need the fabric"),
        UNKNOWN_VALUES_SETTING: UNKNOWN_VALUES_SCHEMA,
    },
    remediation="Let the TrainingCluster component build the node template from the catalog instead of "
                "editing the launch/instance template or scale set by hand.",
)

POWER = PolicySpec(
    name="power-within-envelope",
    description="Per site, the facility draw of every GPU node at full scale (nodes × node power × PUE) stays "
                "within the site's contracted power envelope.",
    enforcement="mandatory",
    properties={
        "max_utilization": _d({"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1.0},
                              "share of each site's envelope the GPU nodes may use"),
        UNKNOWN_VALUES_SETTING: UNKNOWN_VALUES_SCHEMA,
    },
    remediation="Move pools to another site or shrink them through the fleet spec (the placement respects "
                "power), or raise the site's contracted power_mw.",
)

MEMORY = _reads_demand(
    name="model-fits-memory",
    description="Each inference pool's GPUs per replica hold the model weights and the KV cache its context "
                "and concurrency declare.",
    enforcement="mandatory",
    remediation="Raise gpus_per_replica, or lower concurrency or context, or use a smaller dtype or a GPU with "
                "more memory.",
)

QUOTA = PolicySpec(
    name="gpu-quota-respected",
    description="The GPUs requested per site and GPU model (at full scale) do not exceed the quota the stack "
                "declares for that site (advisory offline; the live quota is checked by `gpufleet preflight`).",
    enforcement="advisory",
    properties={
        "quota_gpus": _d({"type": "object", "default": {},
                          "propertyNames": {"pattern": SLUG_PATTERN},
                          "additionalProperties": {"type": "object", "additionalProperties": _COUNT}},
                         "quota overrides: {site: {GPU model: GPUs}}; replaces what the stack declares"),
        UNKNOWN_VALUES_SETTING: UNKNOWN_VALUES_SCHEMA,
    },
    remediation="Request a quota increase, or move pools to a site with quota, through the fleet spec.",
    severity="medium",
)

RUNWAY = _reads_demand(
    name="runway-covers-lead-time",
    description="Each inference service's runway (days until its forecast peak with headroom outgrows the "
                "capacity left after its declared losses), at the policy's confidence, is at least its lead "
                "time plus a margin: more capacity can still be ordered in time.",
    enforcement="mandatory",
    properties={
        "confidence": _d({"type": "string", "pattern": r"^p([1-9][0-9]?)$", "default": "p90"},
                         "the forecast quantile the runway is judged at (pNN), independent of the stack's "
                         "plan_confidence"),
        "margin_days": _d({"type": "number", "minimum": 0, "maximum": 3650, "default": 30},
                          "days the runway must exceed the lead time by"),
        "as_of": _d({"type": "string", "pattern": r"^(today|[0-9]{4}-[0-9]{2}-[0-9]{2})$", "default": "today"},
                    "the date runways count from: YYYY-MM-DD, or today (UTC, the default)"),
    },
    remediation="Order capacity now: raise the service's pools through the fleet spec (a higher "
                "plan_confidence or horizon_days sizes for the faster forecast), or shorten the lead time.",
    severity="critical",
)

REPLICAS = _reads_demand(
    name="replicas-fit-node-pools",
    description="On Kubernetes, the replicas a service's KEDA ScaledObject may run fit what its node pools hold "
                "at their maximum (max replicas × GPUs per replica ≤ node pool max × GPUs per node) and carry "
                "its forecast demand at the horizon with headroom.",
    enforcement="mandatory",
    remediation="Set maxReplicaCount and the node pools' maximum through the fleet spec (the plan sizes both; run "
                "`gpufleet plan`), not by hand.",
)

_DRAW = {"type": "object", "additionalProperties": False, "properties": {
    "power_mw": _d({"type": "number", "minimum": 0}, "the stack's facility draw at the site at full scale, in MW"),
    "gpus": _d({"type": "object", "additionalProperties": _COUNT}, "its GPUs at the site by model, at full scale"),
}}

SHARED = PolicySpec(
    name=SHARED_POLICY,
    description="Per site shared with other stacks, this stack's draw and GPUs at full scale plus the other "
                "stacks' (from the policy config `gpufleet fleet check --emit-policy-config` writes) stay within "
                "the site's power envelope and GPU quotas.",
    enforcement="mandatory",
    properties={
        "sites": _d({"type": "object", "default": {}, "propertyNames": {"pattern": SLUG_PATTERN},
                     "additionalProperties": {
                         "type": "object", "additionalProperties": False, "required": ["power_mw", "other_stacks"],
                         "properties": {
                             "power_mw": _d({"type": "number", "minimum": 0}, "the site's envelope, in MW"),
                             "quota_gpus": _d({"type": "object", "additionalProperties": _COUNT},
                                              "the site's GPU quotas by model (a model left out is unlimited)"),
                             "other_stacks": _d({"type": "object", "additionalProperties": _DRAW},
                                                "what every other stack draws at the site, by stack name"),
                         }}},
                    "shared sites by name: {site: {power_mw, quota_gpus, other_stacks: {stack: {power_mw, gpus}}}}, "
                    "as `gpufleet fleet check --emit-policy-config` writes them"),
        UNKNOWN_VALUES_SETTING: UNKNOWN_VALUES_SCHEMA,
    },
    remediation="Shrink or move pools through the fleet spec, or raise the shared site's envelope or quota in the "
                "one declaration every stack includes; then rerun `gpufleet fleet check --emit-policy-config`.",
)

SPOT_FLOOR = _reads_demand(
    name="on-demand-floor-covers-peak",
    description="Each inference service with spot capacity keeps enough on-demand capacity (read from its node "
                "groups: ASG instances distribution, Azure Spot scale sets, GCP SPOT MIGs) to carry its forecast "
                "peak after its declared share of spot nodes is reclaimed, and runs no more on spot than its "
                "spot.max_fraction allows.",
    enforcement="mandatory",
    remediation="Let the plan set the spot share (fleet spec `spot:`; run `gpufleet plan`) instead of editing the "
                "instances distribution or spot groups by hand, or lower spot.max_fraction.",
    severity="critical",
)

RAN_CLEANLY = PolicySpec(
    name="policies-ran-cleanly",
    description="Every gpufleet policy ran to completion with a valid config: a policy that crashed blocks "
                "the preview instead of passing silently.",
    enforcement="mandatory",
    remediation="Read the error in the violation; fix the policy config or report the bug in the pack.",
    severity="critical",
)

POLICIES: tuple[PolicySpec, ...] = (CAPACITY, ZONE_LOSS, WARM, FABRIC, POWER, MEMORY, QUOTA, RUNWAY, SHARED,
                                    REPLICAS, SPOT_FLOOR, RAN_CLEANLY)
"""Every policy, in the order the pack runs them (``policies-ran-cleanly`` last)."""

BY_NAME: dict[str, PolicySpec] = {p.name: p for p in POLICIES}


__all__ = ["BY_NAME", "FLOORS_SCHEMA", "FLOOR_SCHEMA", "POLICIES", "PolicySpec", "UNKNOWN_VALUES_SETTING"]

"""The engine side of Pulumi's policy protocol: run a policy pack as Pulumi runs it, with no Pulumi CLI.

``pulumi preview --policy-pack DIR`` starts the pack, asks it to describe its policies, configures it
and has it analyze the stack's resources; this package does the same, so ``gpufleet preview`` and the
tests exercise the pack exactly as the engine does. One job per module:

* :mod:`~gpufleet.engine.schema`: the JSON-schema validator (the subset policy config schemas use);
* :mod:`~gpufleet.engine.config`: reading a ``--policy-pack-config`` file and reconciling it with the
  pack's policies (defaults, levels, validation);
* :mod:`~gpufleet.engine.resources`: the resources as ``AnalyzeStack`` receives them (URNs, unknowns);
* :mod:`~gpufleet.engine.violations`: enforcement levels and the :class:`Violation` findings;
* :mod:`~gpufleet.engine.process`: the pack process, started as the ``pulumi-analyzer-policy-python``
  shim starts it;
* :mod:`~gpufleet.engine.client`: :class:`PolicyEngine`, the gRPC calls of one analysis.

Only the standard library is imported at module level: ``grpc`` and the Pulumi protobufs load when a
pack is started, so the policy pack itself can import the schema validator cheaply.
"""

from __future__ import annotations

from gpufleet.engine.client import EngineRun, PolicyEngine
from gpufleet.engine.config import (
    PackInfo,
    PolicyConfigEntry,
    PolicyInfo,
    load_policy_config,
    parse_policy_config,
    reconcile_policy_config,
)
from gpufleet.engine.process import PolicyEngineError
from gpufleet.engine.resources import StackResource, analyzed_resources, provider_urn, urn_type
from gpufleet.engine.schema import validate_json_schema
from gpufleet.engine.violations import ENFORCEMENT_LEVELS, Violation

__all__ = [
    "ENFORCEMENT_LEVELS",
    "EngineRun",
    "PackInfo",
    "PolicyConfigEntry",
    "PolicyEngine",
    "PolicyEngineError",
    "PolicyInfo",
    "StackResource",
    "Violation",
    "analyzed_resources",
    "load_policy_config",
    "parse_policy_config",
    "provider_urn",
    "reconcile_policy_config",
    "urn_type",
    "validate_json_schema",
]

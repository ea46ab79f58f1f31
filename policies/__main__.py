"""The gpufleet CrossGuard policy pack: ``pulumi preview --policy-pack policies``.

This file only builds the ``PolicyPack`` (constructing it starts the gRPC server the engine talks
to, prints its port and blocks). The rules live in the importable :mod:`gpufleet.policy` package of the core,
so they can be called and tested on their own.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from gpufleet.heap import collect_less_often
from gpufleet.policy.pack import PACK_DESCRIPTION, PACK_NAME, build_policies

collect_less_often()  # AnalyzeStack reads every resource of the stack at once: see gpufleet.heap

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),
    enforcement_level=EnforcementLevel.ADVISORY,
    description=PACK_DESCRIPTION,
    display_name="gpufleet capacity policies",
    tags=["gpu", "capacity", "gpufleet"],
)

"""Rules of the gpufleet policy pack, importable and testable without the Pulumi engine.

* :mod:`gpufleet.policy.resources`: what the stack provisions, read from its cloud resources;
* :mod:`gpufleet.policy.demand`: what each workload needs (floors and declarations, sized with
  :mod:`gpufleet.sizing`);
* :mod:`gpufleet.policy.rules`: one ``check_*`` function per policy;
* :mod:`gpufleet.policy.config`: names, descriptions, enforcement levels and config schemas;
* :mod:`gpufleet.policy.pack`: the CrossGuard policy objects (fail-closed wrappers).
"""

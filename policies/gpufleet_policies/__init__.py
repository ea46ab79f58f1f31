"""Rules of the gpufleet policy pack, importable and testable without the Pulumi engine.

* :mod:`gpufleet_policies.resources`: what the stack provisions, read from its cloud resources;
* :mod:`gpufleet_policies.demand`: what each workload needs (floors and declarations, sized with
  :mod:`gpufleet.sizing`);
* :mod:`gpufleet_policies.rules`: one ``check_*`` function per policy;
* :mod:`gpufleet_policies.config`: names, descriptions, enforcement levels and config schemas;
* :mod:`gpufleet_policies.pack`: the CrossGuard policy objects (fail-closed wrappers).
"""

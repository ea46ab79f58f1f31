"""gpufleet's knowledge of AWS: profile, preflight reads, resource readers."""

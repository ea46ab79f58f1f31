"""gpufleet's knowledge of azure: profile, preflight reads, resource readers."""

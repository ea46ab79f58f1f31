"""gpufleet's knowledge of gcp: profile, preflight reads, resource readers."""

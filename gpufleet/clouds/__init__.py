"""Everything gpufleet knows about one cloud, in one place per cloud (no Pulumi, no SDK import here)."""

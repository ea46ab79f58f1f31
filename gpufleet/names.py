"""Strings that more than one part of gpufleet must spell the same way, defined once.

The program writes them, the policy pack and ``gpufleet preview`` read them back, and the stack
file uses them as keys: a change here is a change everywhere at once. Cloud-specific strings (type
tokens of cloud resources, default resource names) live in their cloud's profile under
:mod:`gpufleet.clouds`, not here.
"""

from __future__ import annotations

# --- stack config keys --------------------------------------------------------------------------------

CONFIG_NAMESPACE = "gpufleet"
"""The Pulumi project name and config namespace."""
FLEET_CONFIG = "gpufleet:fleet"
"""The fleet object: sites, training runs and inference services."""
FLEET_FILES_CONFIG = "gpufleet:fleetFiles"
"""Paths or globs, relative to the project directory, of files holding (part of) the fleet object."""
SSH_KEY_CONFIG = "gpufleet:sshPublicKey"
"""OpenSSH public key for node groups that need one."""
IMAGES_CONFIG = "gpufleet:images"
"""Image overrides: pool or workload name → image."""
PROGRAM_CONFIG_KEYS = (SSH_KEY_CONFIG, IMAGES_CONFIG)
"""gpufleet settings beside the fleet object, read by the program."""
STACK_DIR_CONFIG = "gpufleet:stackDir"
"""Set by gpufleet's offline runs, never in a stack file: the stack file's directory, where the
program reads a service's ``history`` (``pulumi`` runs it with the project's ``stackConfigDir``)."""

# --- component type tokens ------------------------------------------------------------------------------

TYPE_PREFIX = "gpufleet:index:"
"""Component type tokens are ``gpufleet:index:<Class>``."""
SITE_NETWORK = f"{TYPE_PREFIX}SiteNetwork"
TRAINING_CLUSTER = f"{TYPE_PREFIX}TrainingCluster"
INFERENCE_POOL = f"{TYPE_PREFIX}InferencePool"

# --- tags / labels on every GPU-bearing resource -----------------------------------------------------------

TAG_WORKLOAD = "gpufleet-workload"
TAG_ROLE = "gpufleet-role"
TAG_SITE = "gpufleet-site"
TAG_POOL = "gpufleet-pool"
TAG_GPU = "gpufleet-gpu"
TAG_GPUS_PER_NODE = "gpufleet-gpus-per-node"

# --- values the engine uses for what it does not know yet -------------------------------------------------

UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""What the Pulumi engine sends in place of any value unknown during a preview."""
UNKNOWN_VALUES: frozenset[str] = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    UNKNOWN_SENTINEL,                          # string (the engine sends every unknown as this one)
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})
"""Pulumi's sentinels for values unknown during a preview (the same strings as pulumi_policy's)."""

# --- the offline placeholder SSH key ---------------------------------------------------------------------

PLACEHOLDER_MARK = "gpufleet-offline-placeholder"
"""Comment of the placeholder key offline runs use; ``pulumi up`` refuses it."""
PLACEHOLDER_SSH_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdwdWZsZWV0LW9mZmxpbmUtcGxhY2Vob2xkZXIta2V5 "
    f"{PLACEHOLDER_MARK}"
)
"""Used only by offline runs of stacks that set no SSH key; ``pulumi up`` refuses it."""

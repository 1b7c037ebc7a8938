"""The named Mixer shapes. Kept free of torch so that a spec is checked without importing it."""

from __future__ import annotations

PRESETS: dict[str, dict[str, int]] = {
    "mixer-pico": dict(patch_size=4, embed_dim=64, depth=4, token_mlp_dim=32, channel_mlp_dim=256),
    "mixer-nano": dict(patch_size=4, embed_dim=128, depth=8, token_mlp_dim=64, channel_mlp_dim=512),
    "mixer-micro": dict(
        patch_size=4, embed_dim=256, depth=8, token_mlp_dim=128, channel_mlp_dim=1024
    ),
    "mixer-tiny": dict(
        patch_size=4, embed_dim=384, depth=12, token_mlp_dim=192, channel_mlp_dim=1536
    ),
    # For 8x8 inputs such as scikit-learn's digits.
    "mixer-digits": dict(
        patch_size=2, embed_dim=64, depth=4, token_mlp_dim=32, channel_mlp_dim=256
    ),
}


def list_presets() -> list[str]:
    """Names of the presets, smallest CIFAR-sized first."""
    return list(PRESETS)

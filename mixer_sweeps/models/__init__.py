"""Model definitions: MLP-Mixer and its named presets."""

from mixer_sweeps.models._mixer import (
    PRESETS,
    MixerBlock,
    Mlp,
    MlpMixer,
    create_model,
    list_presets,
)

__all__ = ["PRESETS", "MixerBlock", "Mlp", "MlpMixer", "create_model", "list_presets"]

"""MLP-Mixer image classifier.

Tolstikhin et al. 2021, "MLP-Mixer: An all-MLP Architecture for Vision", arXiv:2105.01601.

An image is cut into non-overlapping patches, each patch is linearly embedded, and the
resulting (tokens x channels) table is processed by Mixer blocks that alternate an MLP
across tokens (token mixing) with an MLP across channels (channel mixing). Layout follows
timm's ``models/mlp_mixer.py``: small blocks, the model, weight init, then ``create_model``
for the named presets (in ``_presets.py``, which a spec reads without importing torch).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchvision.ops import StochasticDepth

from mixer_sweeps.models._presets import PRESETS, list_presets

__all__ = ["PRESETS", "MixerBlock", "Mlp", "MlpMixer", "create_model", "list_presets"]


class Mlp(nn.Module):
    """Two-layer perceptron: Linear -> GELU -> Dropout -> Linear -> Dropout."""

    def __init__(self, in_dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, in_dim)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop1(x)
        x = self.fc2(x)
        x = self.drop2(x)
        return x


class MixerBlock(nn.Module):
    """One Mixer layer (paper eq. 1) with stochastic depth on both residual branches.

    U = X + DropPath(TokenMLP(LayerNorm(X)^T)^T)
    Y = U + DropPath(ChannelMLP(LayerNorm(U)))
    """

    def __init__(
        self,
        num_patches: int,
        embed_dim: int,
        token_mlp_dim: int,
        channel_mlp_dim: int,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.token_mlp = Mlp(num_patches, token_mlp_dim, dropout)
        self.drop_path1 = StochasticDepth(drop_path, mode="row")
        self.norm2 = nn.LayerNorm(embed_dim)
        self.channel_mlp = Mlp(embed_dim, channel_mlp_dim, dropout)
        self.drop_path2 = StochasticDepth(drop_path, mode="row")

    def forward(self, x: Tensor) -> Tensor:
        # x: (batch, tokens, channels)
        y = self.norm1(x)
        y = y.transpose(1, 2)
        y = self.token_mlp(y)
        y = y.transpose(1, 2)
        u = x + self.drop_path1(y)
        y = self.norm2(u)
        y = self.channel_mlp(y)
        return u + self.drop_path2(y)


class MlpMixer(nn.Module):
    """MLP-Mixer: patch embedding, ``depth`` Mixer blocks, LayerNorm, mean pooling, linear head.

    ``drop_path`` is the stochastic-depth rate of the last block; earlier blocks get rates
    increasing linearly from 0, as in timm.
    """

    def __init__(
        self,
        num_classes: int,
        image_size: int,
        in_channels: int,
        patch_size: int,
        embed_dim: int,
        depth: int,
        token_mlp_dim: int,
        channel_mlp_dim: int,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in [
            ("num_classes", num_classes),
            ("image_size", image_size),
            ("in_channels", in_channels),
            ("patch_size", patch_size),
            ("embed_dim", embed_dim),
            ("depth", depth),
            ("token_mlp_dim", token_mlp_dim),
            ("channel_mlp_dim", channel_mlp_dim),
        ]:
            _check_positive_int(name, value)
        if image_size % patch_size != 0:
            raise ValueError(
                "patch_size must divide image_size but got "
                f"patch_size={patch_size}, image_size={image_size}"
            )
        _check_probability("dropout", dropout)
        _check_probability("drop_path", drop_path)

        self.num_classes = num_classes
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_patches = (image_size // patch_size) ** 2
        self.embed_dim = embed_dim

        self.stem = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        drop_path_rates = torch.linspace(0.0, drop_path, depth).tolist()
        self.blocks = nn.Sequential(
            *[
                MixerBlock(
                    self.num_patches, embed_dim, token_mlp_dim, channel_mlp_dim, dropout, rate
                )
                for rate in drop_path_rates
            ]
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(_init_weights)

    def forward(self, images: Tensor) -> Tensor:
        # images: (batch, in_channels, image_size, image_size)
        x = self.stem(images)
        x = x.flatten(2)
        x = x.transpose(1, 2)
        x = self.blocks(x)
        x = self.norm(x)
        x = x.mean(dim=1)
        return self.head(x)


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer but got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive but got {value!r}")


def _check_probability(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1) but got {value!r}")


def _init_weights(module: nn.Module) -> None:
    """timm's MLP-Mixer init, except the head is not zeroed.

    A zero head makes every gradient below it zero on the first step, which hides wiring
    bugs in tests and wastes the first update.
    """
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_in = module.in_channels * math.prod(module.kernel_size)
        nn.init.trunc_normal_(module.weight, std=math.sqrt(1.0 / fan_in))
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def create_model(
    preset: str,
    *,
    num_classes: int,
    image_size: int,
    in_channels: int,
    **overrides: float,
) -> MlpMixer:
    """Build the preset ``preset``; ``overrides`` replace preset values or set dropout rates."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    kwargs = {**PRESETS[preset], **overrides}
    return MlpMixer(
        num_classes=num_classes, image_size=image_size, in_channels=in_channels, **kwargs
    )

"""The run spec: everything one training run needs, as frozen Pydantic models read from YAML.

Every field is documented, so ``sweeps schema`` exports a JSON schema that editors use to
complete and check YAML. Cross-field rules live in ``model_validator``s that name the YAML paths
at fault (see :class:`~mixer_sweeps.spec._errors.FieldError`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mixer_sweeps.spec._errors import FieldError

DatasetName = Literal["cifar10", "cifar100", "digits", "synthetic"]


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""Run and study names: they become folder names and W&B run names."""

DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"
"""``train.device``: whether the machine has it is checked when a run starts."""

SEED_LIMIT = 2**32
"""Seeds are below this: numpy and scikit-learn take nothing larger."""

# Upper bounds no real Mixer run comes near (Mixer-H/14 has embed_dim 1280, depth 32 and MLPs
# of 5120). They keep absurd values out cheaply; whether a run fits the machine's memory is
# estimated when it starts (see mixer_sweeps.spec._resources).
MAX_WIDTH = 65_536
MAX_BATCH = 1 << 20
MAX_EPOCHS = 100_000


class SpecSection(BaseModel):
    """Base of every YAML section: frozen, unknown keys are errors, defaults validated."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False
    )


class DataSpec(SpecSection):
    """Which images to train on and how the training set is split."""

    dataset: DatasetName = Field(
        description="cifar10 | cifar100 (torchvision), digits (scikit-learn's 8x8 digits, offline),"
        " synthetic (generated CIFAR-shaped data for throughput work)."
    )
    root: Path = Field(
        Path("data"),
        description="Folder holding the CIFAR archive (cifar-10-python.tar.gz) or its extracted"
        " folder; downloads go here.",
    )
    val_size: int = Field(
        5000,
        ge=1,
        le=10_000_000,
        description="Images held out of the training set for validation (early stopping, pruning)."
        " The test set is only used for the final number.",
    )
    split_seed: int = Field(
        0,
        ge=0,
        lt=SEED_LIMIT,
        description="Seed of the train/val split; kept apart from `seed` so every trial of a study"
        " is validated on the same images.",
    )
    download: bool = Field(
        True, description="Download CIFAR when it is not under `root` (needs the internet)."
    )


def _preset_or_shape(schema: dict[str, Any]) -> None:
    """The schema of ``model``: a `preset` fills the shape, so only without one is it required.

    Pydantic would mark every shape field required, and editors would flag a spec that names a
    preset; the rule itself is checked when the spec is validated.
    """
    shape = schema.pop("required", [])
    schema["anyOf"] = [
        {"required": ["preset"], "properties": {"preset": {"type": "string"}}},
        {"required": shape},
    ]


class ModelSpec(SpecSection):
    """MLP-Mixer shape. Name a `preset` or list every dimension; listed fields override a preset."""

    model_config = ConfigDict(json_schema_extra=_preset_or_shape)

    preset: str | None = Field(
        None, description="Named shape (mixer-pico, mixer-nano, mixer-micro, mixer-tiny, ...)."
    )
    patch_size: int = Field(
        ge=1, le=1024, description="Side of the square patches; must divide the image size."
    )
    embed_dim: int = Field(ge=1, le=16_384, description="Channels per token (C in the paper).")
    depth: int = Field(ge=1, le=1024, description="Number of Mixer blocks.")
    token_mlp_dim: int = Field(
        ge=1, le=MAX_WIDTH, description="Hidden width of the token-mixing MLP (D_S)."
    )
    channel_mlp_dim: int = Field(
        ge=1, le=MAX_WIDTH, description="Hidden width of the channel-mixing MLP (D_C)."
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout inside the MLPs.")
    drop_path: float = Field(
        0.0, ge=0.0, lt=1.0, description="Stochastic depth rate of the last block (linear ramp)."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        from mixer_sweeps.models import PRESETS

        preset = data["preset"]
        if not isinstance(preset, str) or preset not in PRESETS:
            known = ", ".join(sorted(PRESETS))
            raise FieldError([("model.preset", f"unknown preset {preset!r}; known: {known}")])
        return {**PRESETS[preset], **data}


class RandAugmentSpec(SpecSection):
    """RandAugment (Cubuk et al. 2020), drawn per image."""

    num_ops: int = Field(2, ge=1, le=64, description="Operations applied to each image.")
    magnitude: int = Field(9, ge=0, description="Strength of every operation, in bins.")
    num_magnitude_bins: int = Field(
        31, ge=2, le=1024, description="Bins the magnitude range is cut into."
    )

    @model_validator(mode="after")
    def _magnitude_in_range(self) -> RandAugmentSpec:
        if self.magnitude >= self.num_magnitude_bins:
            raise FieldError(
                [
                    (
                        "augment.randaugment.magnitude",
                        f"must be below num_magnitude_bins={self.num_magnitude_bins}"
                        f" but got {self.magnitude}",
                    )
                ]
            )
        return self


class AugmentSpec(SpecSection):
    """Training-time augmentation, applied to whole batches on the training device."""

    random_crop: bool = Field(True, description="Pad by `crop_padding`, then crop at random.")
    crop_padding: int = Field(
        4, ge=0, le=1024, description="Zero padding before the random crop; at most the image size."
    )
    hflip: bool = Field(True, description="Flip half of the images horizontally.")
    randaugment: RandAugmentSpec | None = Field(
        default_factory=RandAugmentSpec, description="RandAugment settings; null turns it off."
    )
    mixup_alpha: float = Field(0.8, ge=0.0, description="Mixup Beta(alpha, alpha); 0 turns it off.")
    cutmix_alpha: float = Field(
        0.0,
        ge=0.0,
        description="CutMix Beta(alpha, alpha); 0 turns it off. With Mixup on too,"
        " each batch uses one of the two.",
    )
    random_erasing: float = Field(
        0.25, ge=0.0, le=1.0, description="Probability of erasing a random box of each image."
    )
    label_smoothing: float = Field(
        0.1, ge=0.0, lt=1.0, description="Mass spread uniformly over all classes in the targets."
    )


class OptimSpec(SpecSection):
    """AdamW with linear warm-up then cosine decay, and early stopping on validation accuracy."""

    lr: float = Field(1e-3, gt=0.0, description="Peak learning rate, reached after warm-up.")
    weight_decay: float = Field(0.05, ge=0.0, description="AdamW decoupled weight decay.")
    batch_size: int = Field(128, ge=1, le=MAX_BATCH, description="Training images per step.")
    epochs: int = Field(300, ge=1, le=MAX_EPOCHS, description="Maximum number of epochs.")
    warmup_epochs: float = Field(5, ge=0.0, description="Epochs of linear warm-up from 0 to `lr`.")
    min_lr: float = Field(1e-6, ge=0.0, description="Learning rate at the end of the cosine.")
    early_stopping_patience: int | None = Field(
        20,
        ge=1,
        le=MAX_EPOCHS,
        description="Stop after this many epochs without a new best val accuracy; null disables.",
    )
    grad_clip_norm: float | None = Field(
        None, gt=0.0, description="Clip the global gradient norm to this value; null disables."
    )

    @model_validator(mode="after")
    def _schedule_is_consistent(self) -> OptimSpec:
        problems = []
        if self.warmup_epochs > self.epochs:
            problems.append(
                (
                    "optim.warmup_epochs",
                    f"cannot exceed optim.epochs={self.epochs} but got {self.warmup_epochs}",
                )
            )
        if self.min_lr > self.lr:
            problems.append(
                ("optim.min_lr", f"cannot exceed optim.lr={self.lr} but got {self.min_lr}")
            )
        if problems:
            raise FieldError(problems)
        return self


class TrainSpec(SpecSection):
    """Where and how the training loop runs."""

    device: str = Field(
        "auto",
        description="auto (cuda when available, else cpu), cpu, cuda, cuda:N (the N-th visible"
        " GPU) or mps (Apple GPUs).",
        json_schema_extra={"pattern": DEVICE_PATTERN},
    )
    threads: int | None = Field(
        None, ge=1, le=4096, description="torch intra-op threads; null uses all cores."
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto is bf16 autocast on cuda and fp32 on cpu."
    )
    compile: bool = Field(False, description="torch.compile the model (worth it on GPUs).")
    eval_batch_size: int = Field(
        1024, ge=1, le=MAX_BATCH, description="Images per step when evaluating."
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not re.fullmatch(DEVICE_PATTERN, value):
            raise ValueError("must be auto, cpu, cuda, cuda:<index> or mps")
        return value


class WandbSpec(SpecSection):
    """Weights & Biases tracking. Never prompts; offline when there is no key."""

    mode: Literal["auto", "online", "offline", "disabled"] = Field(
        "auto",
        description="auto is online when an API key or login is present, else offline.",
    )
    project: str = Field("mixer-sweeps", min_length=1, description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (user or team); null uses default.")
    tags: list[str] = Field(default_factory=list, description="Tags added to every run.")


class TrackingSpec(SpecSection):
    """Experiment trackers the run reports to."""

    wandb: WandbSpec = Field(default_factory=WandbSpec, description="Weights & Biases settings.")


class RunSpec(SpecSection):
    """One training run, fully described."""

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=128,
        description="Run name; results go to results/<name>/.",
    )
    seed: int = Field(
        0, ge=0, lt=SEED_LIMIT, description="Seed of weights, batch order and augmentation."
    )
    data: DataSpec = Field(description="Dataset and split.")
    model: ModelSpec = Field(description="Model shape.")
    augment: AugmentSpec = Field(default_factory=AugmentSpec, description="Augmentation.")
    optim: OptimSpec = Field(default_factory=OptimSpec, description="Optimisation.")
    train: TrainSpec = Field(default_factory=TrainSpec, description="Training loop.")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec, description="Trackers.")

    @model_validator(mode="after")
    def _fits_the_dataset(self) -> RunSpec:
        from mixer_sweeps.data import DATASETS

        info = DATASETS[self.data.dataset]
        problems = []
        if info.image_size % self.model.patch_size:
            problems.append(
                (
                    "model.patch_size",
                    f"must divide the image size {info.image_size} of {info.name}"
                    f" but got {self.model.patch_size}",
                )
            )
        if self.augment.crop_padding > info.image_size:
            problems.append(
                (
                    "augment.crop_padding",
                    f"cannot exceed the image size {info.image_size} of {info.name}"
                    f" but got {self.augment.crop_padding}",
                )
            )
        if self.data.val_size >= info.train_size:
            problems.append(
                (
                    "data.val_size",
                    f"must be smaller than the {info.train_size} training images of {info.name}"
                    f" but got {self.data.val_size}",
                )
            )
        if problems:
            raise FieldError(problems)
        return self

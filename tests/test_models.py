import pytest
import torch
import torch.nn.functional as F

from mixer_sweeps.models import PRESETS, MlpMixer, create_model, list_presets

NUM_CLASSES = 10
BATCH_SIZE = 2

# Smallest input each patch size divides into a reasonable token grid.
INPUT_SHAPES = {4: (3, 32), 2: (1, 8)}

TINY_KWARGS = dict(
    num_classes=NUM_CLASSES,
    image_size=8,
    in_channels=1,
    patch_size=2,
    embed_dim=16,
    depth=4,
    token_mlp_dim=8,
    channel_mlp_dim=32,
)


def _input_shape(preset: str) -> tuple[int, int]:
    return INPUT_SHAPES[PRESETS[preset]["patch_size"]]


def test_list_presets_matches_presets():
    assert list_presets() == list(PRESETS)
    for name in ["mixer-pico", "mixer-nano", "mixer-micro", "mixer-tiny", "mixer-digits"]:
        assert name in list_presets()


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_forward_backward(preset):
    torch.manual_seed(0)
    in_channels, image_size = _input_shape(preset)
    model = create_model(
        preset,
        num_classes=NUM_CLASSES,
        image_size=image_size,
        in_channels=in_channels,
        dropout=0.0,
        drop_path=0.0,
    )
    model.train()
    images = torch.randn(BATCH_SIZE, in_channels, image_size, image_size)
    targets = torch.randint(0, NUM_CLASSES, (BATCH_SIZE,))

    logits = model(images)
    assert logits.shape == (BATCH_SIZE, NUM_CLASSES)
    assert torch.isfinite(logits).all()

    F.cross_entropy(logits, targets).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_mixer_nano_parameter_count():
    model = create_model("mixer-nano", num_classes=10, image_size=32, in_channels=3)
    assert sum(p.numel() for p in model.parameters()) == 1_132_170


def test_overrides_replace_preset_values():
    model = create_model(
        "mixer-pico", num_classes=10, image_size=32, in_channels=3, depth=2, embed_dim=32
    )
    assert len(model.blocks) == 2
    assert model.embed_dim == 32


def test_drop_path_increases_linearly():
    model = MlpMixer(**{**TINY_KWARGS, "drop_path": 0.3})
    rates = [block.drop_path1.p for block in model.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    "overrides, bad_value",
    [
        (dict(patch_size=3, image_size=32), "patch_size=3"),
        (dict(depth=0), "0"),
        (dict(depth=-2), "-2"),
        (dict(embed_dim=0), "0"),
        (dict(num_classes=-1), "-1"),
        (dict(token_mlp_dim=2.5), "2.5"),
        (dict(in_channels=0), "0"),
        (dict(dropout=1.0), "1.0"),
        (dict(dropout=-0.1), "-0.1"),
        (dict(drop_path=1.5), "1.5"),
    ],
)
def test_bad_arguments(overrides, bad_value):
    with pytest.raises(ValueError, match=bad_value) as excinfo:
        MlpMixer(**{**TINY_KWARGS, **overrides})
    assert next(iter(overrides)) in str(excinfo.value)


def test_unknown_preset():
    with pytest.raises(ValueError, match="mixer-huge") as excinfo:
        create_model("mixer-huge", num_classes=10, image_size=32, in_channels=3)
    for name in PRESETS:
        assert name in str(excinfo.value)


def test_drop_path_is_stochastic_in_train_and_deterministic_in_eval():
    torch.manual_seed(0)
    model = MlpMixer(**{**TINY_KWARGS, "drop_path": 0.5})
    images = torch.randn(8, 1, 8, 8)

    model.train()
    torch.manual_seed(1)
    first = model(images)
    torch.manual_seed(2)
    second = model(images)
    assert not torch.allclose(first, second)

    model.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        first = model(images)
        torch.manual_seed(2)
        second = model(images)
    assert torch.equal(first, second)


def test_bf16_autocast():
    model = MlpMixer(**TINY_KWARGS)
    images = torch.randn(BATCH_SIZE, 1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(images)
    assert logits.shape == (BATCH_SIZE, NUM_CLASSES)
    assert torch.isfinite(logits.float()).all()


def test_compiles_without_graph_breaks():
    model = MlpMixer(**{**TINY_KWARGS, "dropout": 0.1, "drop_path": 0.1}).eval()
    images = torch.randn(BATCH_SIZE, 1, 8, 8)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(images), model(images))

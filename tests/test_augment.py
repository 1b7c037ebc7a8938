import collections

import pytest
import torch
import torch.nn.functional as nnf
from torch.profiler import ProfilerActivity, profile

from mixer_sweeps.data._augment import RANDAUGMENT_OPS, BatchAugment, normalize

NUM_CLASSES = 10
SHAPES = [(1, 8), (3, 32)]  # (channels, size): digits 8x8x1, CIFAR 32x32x3
STATS = {1: ((0.5,), (0.25,)), 3: ((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))}

ALL_OFF = dict(
    random_crop=False,
    hflip=False,
    randaugment_num_ops=None,
    random_erasing=0.0,
    mixup_alpha=0.0,
    cutmix_alpha=0.0,
    label_smoothing=0.0,
)
ALL_ON = dict(
    random_crop=True,
    hflip=True,
    randaugment_num_ops=2,
    random_erasing=0.25,
    mixup_alpha=0.8,
    cutmix_alpha=1.0,
    label_smoothing=0.1,
)


def make_aug(channels: int, **overrides) -> BatchAugment:
    mean, std = STATS[channels]
    kwargs = {**ALL_OFF, **overrides}
    return BatchAugment(num_classes=NUM_CLASSES, mean=mean, std=std, **kwargs)


def rand_images(batch: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, channels, size, size), dtype=torch.uint8, generator=g)


def same_image_batch(batch: int, channels: int, size: int) -> torch.Tensor:
    return rand_images(1, channels, size).expand(batch, -1, -1, -1).contiguous()


def rand_labels(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, NUM_CLASSES, (batch,), generator=g)


def n_distinct(x: torch.Tensor) -> int:
    return torch.unique(x.flatten(1), dim=0).shape[0]


# --------------------------------------------------------------------------- output contract
@pytest.mark.parametrize("channels,size", SHAPES)
@pytest.mark.parametrize("config", [ALL_OFF, ALL_ON], ids=["off", "on"])
def test_output_contract(channels, size, config):
    torch.manual_seed(0)
    images = rand_images(16, channels, size)
    before = images.clone()
    labels = rand_labels(16)
    out, targets = make_aug(channels, **config)(images, labels)
    assert out.shape == images.shape and out.dtype == torch.float32
    assert out.device == images.device
    assert targets.shape == (16, NUM_CLASSES) and targets.dtype == torch.float32
    assert targets.device == images.device
    torch.testing.assert_close(targets.sum(1), torch.ones(16))
    assert (targets >= 0).all()
    assert torch.isfinite(out).all()
    assert torch.equal(images, before)  # input not modified in place


@pytest.mark.parametrize("channels,size", SHAPES)
def test_all_off_is_normalize_and_one_hot(channels, size):
    images, labels = rand_images(8, channels, size), rand_labels(8)
    out, targets = make_aug(channels)(images, labels)
    mean, std = STATS[channels]
    torch.testing.assert_close(out, normalize(images, mean, std))
    assert torch.equal(targets, nnf.one_hot(labels, NUM_CLASSES).float())


def test_normalize_values():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    out = normalize(images, (0.2,), (0.5,))
    torch.testing.assert_close(out, torch.tensor([-0.4, 0.0, 1.6]).view(1, 1, 1, 3))
    assert out.dtype == torch.float32


@pytest.mark.parametrize("channels,size", [(1, 8), (3, 32), (3, 5)])
def test_normalize_matches_manual_formula(channels, size):
    images = rand_images(4, channels, size)
    mean, std = STATS[channels]
    expected = (images.float() / 255 - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(
        -1, 1, 1
    )
    torch.testing.assert_close(normalize(images, mean, std), expected)


# --------------------------------------------------------------------------- per-sample randomness
@pytest.mark.parametrize("channels,size", SHAPES)
def test_crop_is_per_sample_and_a_valid_padded_crop(channels, size):
    torch.manual_seed(1)
    pad = 4 if size == 32 else 2
    images = same_image_batch(64, channels, size)
    aug = make_aug(channels, random_crop=True, crop_padding=pad)
    out, _ = aug(images, rand_labels(64))
    assert n_distinct(out) > 1
    # every output is exactly one of the (2 pad + 1)^2 crops of the zero-padded image
    mean, std = STATS[channels]
    padded = nnf.pad(images[:1], (pad,) * 4)
    candidates = torch.cat(
        [
            normalize(padded[..., dy : dy + size, dx : dx + size], mean, std)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
        ]
    )
    match = (out[:, None] == candidates[None]).flatten(2).all(-1)  # (B, n_candidates)
    assert match.any(1).all()


@pytest.mark.parametrize("channels,size", SHAPES)
def test_hflip_is_per_sample(channels, size):
    torch.manual_seed(2)
    images = same_image_batch(64, channels, size)
    out, _ = make_aug(channels, hflip=True)(images, rand_labels(64))
    mean, std = STATS[channels]
    plain = normalize(images, mean, std)
    is_plain = (out == plain).flatten(1).all(1)
    is_flipped = (out == plain.flip(-1)).flatten(1).all(1)
    assert (is_plain | is_flipped).all()
    assert is_plain.any() and is_flipped.any()


@pytest.mark.parametrize("channels,size", SHAPES)
def test_randaugment_is_per_sample(channels, size):
    torch.manual_seed(3)
    images = same_image_batch(64, channels, size)
    out, _ = make_aug(channels, randaugment_num_ops=2)(images, rand_labels(64))
    assert n_distinct(out) > 5


@pytest.mark.parametrize("channels,size", SHAPES)
def test_random_erasing_boxes_are_per_sample_rectangles(channels, size):
    torch.manual_seed(4)
    images = same_image_batch(64, channels, size)
    out, _ = make_aug(channels, random_erasing=1.0)(images, rand_labels(64))
    mean, std = STATS[channels]
    plain = normalize(images, mean, std)
    assert (plain != 0).all()  # so zeros in the output mark erased pixels
    erased = out == 0
    assert ((out == plain) | erased).all()
    assert (erased.all(1) | ~erased.any(1)).all()  # all channels erased together
    erased = erased[:, 0]
    n_erased = erased.flatten(1).any(1)
    assert n_erased.sum() >= 56  # p=1; only samples whose 10 box attempts all fail are kept
    assert n_distinct(erased[n_erased]) > 10
    for mask in erased[n_erased]:
        rows = mask.any(1).nonzero().flatten()
        cols = mask.any(0).nonzero().flatten()
        box = torch.zeros_like(mask)
        box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        assert torch.equal(mask, box)  # a single axis-aligned rectangle
        h, w = len(rows), len(cols)
        assert h < size and w < size
        # torchvision's scale (0.02, 0.33) before rounding h and w to integers
        assert 0.02 * size * size * 0.5 <= h * w <= 0.33 * size * size * 1.5 + 2


def test_random_erasing_probability():
    torch.manual_seed(5)
    images = same_image_batch(512, 3, 32)
    out, _ = make_aug(3, random_erasing=0.3)(images, rand_labels(512))
    frac = (out == 0).flatten(1).any(1).float().mean().item()
    assert 0.2 < frac < 0.4


# --------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("channels,size", SHAPES)
def test_same_seed_same_output_different_seed_differs(channels, size):
    images, labels = rand_images(32, channels, size), rand_labels(32)
    aug = make_aug(channels, **ALL_ON)

    def run(seed):
        torch.manual_seed(seed)
        return aug(images, labels)

    a, ta = run(7)
    b, tb = run(7)
    c, tc = run(8)
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert not torch.equal(a, c)


# --------------------------------------------------------------------------- targets
@pytest.mark.parametrize("eps,num_classes", [(0.1, 10), (0.2, 4)])
def test_label_smoothing_exact(eps, num_classes):
    labels = torch.arange(8) % num_classes
    aug = BatchAugment(
        num_classes=num_classes, mean=(0.5,), std=(0.5,), **{**ALL_OFF, "label_smoothing": eps}
    )
    _, targets = aug(rand_images(8, 1, 8), labels)
    expected = torch.full((8, num_classes), eps / num_classes)
    expected[torch.arange(8), labels] = 1 - eps + eps / num_classes
    torch.testing.assert_close(targets, expected)
    if (eps, num_classes) == (0.1, 10):
        torch.testing.assert_close(targets.max(1).values, torch.full((8,), 0.91))
        torch.testing.assert_close(targets.min(1).values, torch.full((8,), 0.01))


@pytest.mark.parametrize("seed", range(5))
def test_mixup_targets_and_images(seed):
    torch.manual_seed(seed)
    images = rand_images(8, 3, 32, seed)
    labels = torch.arange(8)  # distinct, so each row pairs two different classes
    out, targets = make_aug(3, mixup_alpha=1.0)(images, labels)
    assert ((targets > 0).sum(1) == 2).all()
    lam = targets[0, labels[0]].item()
    assert 0 < lam < 1
    rows = torch.arange(8)
    torch.testing.assert_close(targets[rows, labels], torch.full((8,), lam))  # one lam per batch
    torch.testing.assert_close(targets[rows, labels.roll(1)], torch.full((8,), 1 - lam))
    plain = normalize(images, *STATS[3])
    torch.testing.assert_close(out, lam * plain + (1 - lam) * plain.roll(1, 0))


@pytest.mark.parametrize("seed", range(5))
def test_cutmix_targets_and_images(seed):
    torch.manual_seed(seed)
    images = rand_images(8, 3, 32, seed)
    labels = torch.arange(8)
    out, targets = make_aug(3, cutmix_alpha=1.0, label_smoothing=0.1)(images, labels)
    plain = normalize(images, *STATS[3])
    from_self = (out == plain).all(1)  # (B, H, W)
    from_other = (out == plain.roll(1, 0)).all(1)
    assert (from_self | from_other).all()
    pasted = (from_other & ~from_self).float().mean((1, 2))  # same box for the whole batch
    assert torch.allclose(pasted, pasted[0].expand(8))
    frac_other = pasted[0].item()
    rows = torch.arange(8)
    smooth = 0.1 / NUM_CLASSES
    torch.testing.assert_close(
        targets[rows, labels.roll(1)], torch.full((8,), frac_other * 0.9 + smooth)
    )
    torch.testing.assert_close(targets.sum(1), torch.ones(8))


def test_mixup_and_cutmix_both_used():
    images = rand_images(8, 3, 32)
    labels = torch.arange(8)
    aug = make_aug(3, mixup_alpha=1.0, cutmix_alpha=1.0)
    plain = normalize(images, *STATS[3])
    kinds = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out, targets = aug(images, labels)
        torch.testing.assert_close(targets.sum(1), torch.ones(8))
        per_pixel = (out == plain).all(1) | (out == plain.roll(1, 0)).all(1)
        kinds.add("cutmix" if per_pixel.all() else "mixup")
    assert kinds == {"mixup", "cutmix"}


# --------------------------------------------------------------------------- RandAugment ops
@pytest.mark.parametrize("magnitude", [0, 9, 30])
@pytest.mark.parametrize("channels,size", [*SHAPES, (3, 30)])  # 30 x 30: no multiple of 16
@pytest.mark.parametrize("op", RANDAUGMENT_OPS)
def test_each_randaugment_op_matches_torchvision_per_sample(op, channels, size, magnitude):
    torch.manual_seed(6)
    images = rand_images(24, channels, size)
    aug = make_aug(
        channels, randaugment_num_ops=1, randaugment_ops=[op], randaugment_magnitude=magnitude
    )
    ra = aug.randaugment
    out = aug._batch_randaugment(images)
    assert out.shape == images.shape and out.dtype == torch.uint8
    magnitudes_fn, signed = ra._AUGMENTATION_SPACE[op]
    mags = magnitudes_fn(ra.num_magnitude_bins, size, size)
    mag = 0.0 if mags is None else float(mags[ra.magnitude])
    # The draws, in torchvision's order: the op (one here), then the sign, per sample.
    torch.manual_seed(6)
    torch.randint(1, (24,))
    negative = (torch.rand(24) <= 0.5) & (signed and mags is not None)
    for i in range(len(images)):
        sign = -1 if negative[i] else 1
        ref = ra._apply_image_or_video_transform(
            images[i : i + 1], op, sign * mag, interpolation=ra.interpolation, fill=ra._fill
        )
        assert torch.equal(out[i : i + 1], ref), f"sample {i} is not {op}(image, {sign * mag})"
    # full forward also works with this op alone
    full, _ = aug(images, rand_labels(24))
    assert full.shape == images.shape


@pytest.mark.parametrize("channels,size", [*SHAPES, (3, 30)])
def test_randaugment_rounds_are_torchvision_per_image_with_the_drawn_ops(channels, size):
    aug = make_aug(channels, randaugment_num_ops=3, randaugment_magnitude=13)
    ra, batch = aug.randaugment, 96
    images = rand_images(batch, channels, size)
    torch.manual_seed(8)
    out = aug._batch_randaugment(images)
    torch.manual_seed(8)
    draws = [
        (torch.randint(len(RANDAUGMENT_OPS), (batch,)), torch.rand(batch) <= 0.5) for _ in range(3)
    ]
    for i in range(batch):
        ref = images[i : i + 1]
        for op_idx, negative in draws:
            op = RANDAUGMENT_OPS[op_idx[i]]
            magnitudes_fn, signed = ra._AUGMENTATION_SPACE[op]
            mags = magnitudes_fn(ra.num_magnitude_bins, size, size)
            mag = 0.0 if mags is None else float(mags[ra.magnitude])
            mag = -mag if signed and negative[i] else mag
            ref = ra._apply_image_or_video_transform(
                ref, op, mag, interpolation=ra.interpolation, fill=ra._fill
            )
        assert torch.equal(out[i : i + 1], ref), f"sample {i}"


def test_randaugment_signs_are_per_sample():
    torch.manual_seed(9)
    images = same_image_batch(64, 3, 32)
    aug = make_aug(3, randaugment_num_ops=1, randaugment_ops=["Rotate"])
    out = aug._batch_randaugment(images)
    assert n_distinct(out) == 2  # +30*9/30 and -30*9/30 degrees


def test_randaugment_uses_all_ops():
    torch.manual_seed(10)
    images = rand_images(256, 3, 32)
    aug = make_aug(3, randaugment_num_ops=1)
    out = aug._batch_randaugment(images)
    changed = (out != images).flatten(1).any(1).float().mean().item()
    # Identity (and near-no-op cases) leave some images untouched, most are changed
    assert 0.5 < changed < 1.0


# --------------------------------------------------------------------------- per-batch cost
# On CUDA every op the augmentation dispatches is at least one kernel launch, and launches, not
# arithmetic, are what a batch of small images costs; the CPU profiler sees the same dispatches.
# Counted are the ops called from Python, not the ones an op calls inside (a CPU reduction's
# own fills depend on its size).
TABLE_OPS = ["Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness"]
TABLE_OPS += ["Posterize", "Solarize"]


def aten_ops(fn, *args) -> collections.Counter:
    fn(*args)  # per-shape tables are made on the first call
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args)
    return collections.Counter(
        e.name
        for e in prof.events()
        if e.name.startswith("aten::")
        and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
    )


def test_table_ops_cost_the_same_however_many_of_them_are_drawn():
    images = rand_images(256, 3, 32)
    one = make_aug(3, randaugment_num_ops=2, randaugment_ops=["Rotate"])
    all_table_ops = make_aug(3, randaugment_num_ops=2, randaugment_ops=TABLE_OPS)
    torch.manual_seed(0)
    table_ops = aten_ops(all_table_ops._batch_randaugment, images)
    assert table_ops == aten_ops(one._batch_randaugment, images)


def test_ops_per_batch_do_not_grow_with_the_batch():
    aug = make_aug(3, **{**ALL_ON, "cutmix_alpha": 0.0})  # Mixup and CutMix differ in ops
    counts = []
    for batch in (256, 2048):
        torch.manual_seed(0)  # every (op, sign) is drawn at both sizes
        counts.append(sum(aten_ops(aug, rand_images(batch, 3, 32), rand_labels(batch)).values()))
    assert counts[0] == counts[1]


def test_a_batch_builds_no_tensor_from_python_data():
    # On CUDA each tensor built from Python numbers is a host->device copy. (With both mixers on,
    # v2.RandomChoice draws its pick from a CPU tensor of its probabilities: no copy.)
    images, labels = rand_images(64, 3, 32), rand_labels(64)
    ops = aten_ops(make_aug(3, **{**ALL_ON, "cutmix_alpha": 0.0}), images, labels)
    assert ops["aten::lift_fresh"] == 0 and ops["aten::linspace"] == 0


# --------------------------------------------------------------------------- misc
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_classes=0),
        dict(random_erasing=1.5),
        dict(label_smoothing=1.0),
        dict(mixup_alpha=-1.0),
        dict(randaugment_num_ops=2, randaugment_magnitude=31),
        dict(randaugment_num_ops=2, randaugment_ops=["Nope"]),
        dict(std=(0.0,)),
    ],
)
def test_invalid_arguments(kwargs):
    base = dict(num_classes=NUM_CLASSES, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError):
        BatchAugment(**{**base, **kwargs})


def test_rejects_float_images():
    aug = make_aug(1)
    with pytest.raises(ValueError):
        aug(torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_all_on():
    images = rand_images(64, 3, 32).cuda()
    labels = rand_labels(64).cuda()
    torch.manual_seed(0)
    out, targets = make_aug(3, **ALL_ON).cuda()(images, labels)
    assert out.is_cuda and targets.is_cuda
    torch.testing.assert_close(targets.sum(1), torch.ones(64, device="cuda"))

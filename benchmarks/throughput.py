"""Training throughput: mixer-sweeps' on-device batch pipeline vs the usual PIL-in-DataLoader way.

Both sides train the same Mixer with the same recipe (random crop, flip, RandAugment 2/9, random
erasing 0.25, Mixup 0.8, label smoothing 0.1, AdamW) on the same CIFAR-shaped synthetic images,
in the same process, and the ratio of their images/s is printed with the hardware it ran on.

    python benchmarks/throughput.py                       # CPU, mixer-pico, short
    python benchmarks/throughput.py --device cuda --preset mixer-nano --batch-size 512 --steps 200

It also prints the on-device augmentation alone (ms per batch, no model), to tell its share of a
step from the model's.

The reference is what most CIFAR scripts do: a torchvision Dataset that turns each uint8 image into
a PIL image and runs ``transforms.v2`` on it in DataLoader workers, Mixup on the collated batch.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from mixer_sweeps.data import BatchAugment, load_dataset
from mixer_sweeps.models import create_model
from mixer_sweeps.training import optimizer_kernel


class _PilDataset(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def _train_step(model, optimizer, images, targets) -> None:
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=images.is_cuda):
        logits = model(images)
    loss = torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_reference(args, data, device) -> float:
    info = data.info
    transform = v2.Compose(
        [
            v2.RandomCrop(info.image_size, padding=4),
            v2.RandomHorizontalFlip(),
            v2.RandAugment(num_ops=2, magnitude=9),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(info.mean, info.std),
            v2.RandomErasing(p=0.25),
        ]
    )
    loader = DataLoader(
        _PilDataset(data.train.images, data.train.labels, transform),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    mixup = v2.MixUp(alpha=0.8, num_classes=info.num_classes)
    model, optimizer = _model(args, info, device)

    def batches():
        while True:
            for images, labels in loader:
                images, labels = mixup(images, labels)
                targets = labels * 0.9 + 0.1 / info.num_classes
                yield images.to(device, non_blocking=True), targets.to(device, non_blocking=True)

    return _measure(args, device, model, optimizer, batches())


def _augment(info) -> BatchAugment:
    return BatchAugment(
        num_classes=info.num_classes,
        randaugment_num_ops=2,
        randaugment_magnitude=9,
        random_erasing=0.25,
        mixup_alpha=0.8,
        label_smoothing=0.1,
        mean=info.mean,
        std=info.std,
    )


def _on_device_batches(args, train, augment, device):
    while True:
        order = torch.randperm(len(train), device=device)
        for start in range(0, len(train) - args.batch_size + 1, args.batch_size):
            index = order[start : start + args.batch_size]
            yield augment(train.images[index], train.labels[index])


def bench_on_device(args, data, device) -> float:
    train = data.train.to(device)
    model, optimizer = _model(args, data.info, device)
    batches = _on_device_batches(args, train, _augment(data.info), device)
    return _measure(args, device, model, optimizer, batches)


def bench_augment_only(args, data, device) -> float:
    """Milliseconds per batch of the on-device augmentation alone (the batches are dropped)."""
    batches = _on_device_batches(args, data.train.to(device), _augment(data.info), device)
    for _ in range(args.warmup):
        next(batches)
    _sync(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        next(batches)
    _sync(device)
    return (time.perf_counter() - started) / args.steps * 1e3


def _model(args, info, device):
    model = create_model(
        args.preset,
        num_classes=info.num_classes,
        image_size=info.image_size,
        in_channels=info.in_channels,
    ).to(device)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3, **optimizer_kernel(model))


def _measure(args, device, model, optimizer, batches) -> float:
    for _ in range(args.warmup):
        _train_step(model, optimizer, *next(batches))
    _sync(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        _train_step(model, optimizer, *next(batches))
    _sync(device)
    return args.steps * args.batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="mixer-pico")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args()

    device = torch.device(args.device)
    data = load_dataset("synthetic", val_size=5000)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"hardware: {hardware or platform.machine()}, {os.cpu_count()} CPU cores,"
        f" torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"model {args.preset}, batch {args.batch_size}, {args.steps} timed steps after"
        f" {args.warmup} warm-up steps, {args.repeats} repeats; reference uses"
        f" {args.workers} DataLoader workers"
    )
    reference, ours, augment_ms = [], [], []
    for _ in range(args.repeats):
        reference.append(bench_reference(args, data, device))
        ours.append(bench_on_device(args, data, device))
        augment_ms.append(bench_augment_only(args, data, device))
    for name, runs in (("PIL in DataLoader", reference), ("on-device batches", ours)):
        each = ", ".join(f"{r:,.0f}" for r in runs)
        print(f"{name:>18}: mean {statistics.mean(runs):,.0f} images/s  ({each})")
    ratio = statistics.mean(ours) / statistics.mean(reference)
    print(f"ratio (on-device / reference): {ratio:.2f}")
    each = ", ".join(f"{ms:.2f}" for ms in augment_ms)
    print(
        f"on-device augmentation alone: mean {statistics.mean(augment_ms):.2f} ms/batch"
        f" of {args.batch_size}  ({each})"
    )


if __name__ == "__main__":
    main()

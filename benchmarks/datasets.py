"""How fast the synthetic dataset is made, against drawing the same bytes at random.

``load_dataset("synthetic")`` builds 60,000 CIFAR-shaped uint8 images (class templates, shifts,
brightness, noise) and splits them. The reference, measured in the same process, is the least
any generator of that many random pixels could do: one ``torch.randint`` of the same shape and
dtype. The ratio says how many times that floor the whole load costs (the docstring of
``_generate_synthetic`` promises about a second on two cores).

    python benchmarks/datasets.py              # 5 repeats each
    python benchmarks/datasets.py --repeats 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _hardware import hardware  # benchmarks/, on sys.path when run as a script


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    import torch

    from mixer_sweeps.data import DATASETS, load_dataset

    info = DATASETS["synthetic"]
    n = info.train_size + info.test_size
    shape = (n, info.in_channels, info.image_size, info.image_size)

    def reference() -> None:
        gen = torch.Generator().manual_seed(0)
        torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)

    def synthetic() -> None:
        load_dataset("synthetic", val_size=5000, split_seed=0)

    print(f"hardware: {hardware()}")
    print(f"{n:,} images of {shape[1:]} uint8, median of {args.repeats} after a warm-up")
    runs: dict[str, list[float]] = {}
    for name, fn in (("random bytes (reference)", reference), ("synthetic dataset", synthetic)):
        fn()
        runs[name] = [_timed(fn) for _ in range(args.repeats)]
    medians = {name: statistics.median(r) for name, r in runs.items()}
    for name, r in runs.items():
        each = ", ".join(f"{x:.3f}" for x in r)
        print(f"{name:>26}: {medians[name]:6.3f} s  ({each})")
    ratio = medians["synthetic dataset"] / medians["random bytes (reference)"]
    print(f"ratio (synthetic / reference): {ratio:.1f}")


if __name__ == "__main__":
    main()

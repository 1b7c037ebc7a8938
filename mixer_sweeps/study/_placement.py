"""Where each local worker runs: its GPU (``CUDA_VISIBLE_DEVICES``), its CPU cores and threads.

A pure decision from the devices and cores this process may use, so it can be tested without
GPUs: with G visible GPUs, workers are placed round-robin, one GPU each; ``workers_per_gpu`` packs
several workers onto one GPU (a small Mixer uses a small part of a large GPU). The cores the
process may use (``os.sched_getaffinity``, not every core of the machine) are split into disjoint
sets, one per worker while there are enough, and each worker gets as many torch threads as cores.
Without GPUs, only the cores are split.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """One worker's share of the machine."""

    index: int
    gpu: str | None
    """The value of ``CUDA_VISIBLE_DEVICES`` for the worker; None leaves it as it is."""
    cores: tuple[int, ...]
    """The CPU cores the worker may run on."""

    @property
    def threads(self) -> int:
        return len(self.cores)

    def describe(self) -> str:
        where = f"GPU {self.gpu}" if self.gpu is not None else "CPU"
        return f"worker {self.index}: {where}, {self.threads} thread{'s' * (self.threads > 1)}"


def place_workers(
    workers: int | None,
    *,
    gpus: Sequence[str],
    cores: Sequence[int],
    workers_per_gpu: int | None = None,
) -> list[Placement]:
    """Place the workers.

    Args:
        workers: how many; None means one per GPU times ``workers_per_gpu`` (or one on a CPU).
        gpus: the GPUs to use, as ``CUDA_VISIBLE_DEVICES`` names them (``"0"``, ``"2"``, a UUID).
        cores: the CPU cores this process may run on.
        workers_per_gpu: how many workers share one GPU; None: as many as round-robin gives.

    Raises:
        ValueError: a count below 1, no cores, or more workers than ``gpus * workers_per_gpu``.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1 but got {workers}")
    if workers_per_gpu is not None and workers_per_gpu < 1:
        raise ValueError(f"workers per GPU must be at least 1 but got {workers_per_gpu}")
    if workers_per_gpu is not None and not gpus:
        raise ValueError("--workers-per-gpu needs GPUs, but none is visible")
    if not cores:
        raise ValueError("this process may run on no CPU core")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"GPUs must be distinct but got {list(gpus)}")
    if workers is None:
        workers = len(gpus) * (workers_per_gpu or 1) if gpus else 1
    if workers_per_gpu is not None and workers > len(gpus) * workers_per_gpu:
        raise ValueError(
            f"{workers} workers do not fit on {len(gpus)} GPUs with {workers_per_gpu} per GPU"
        )
    shares = _split(sorted(cores), workers)
    return [
        Placement(index=i, gpu=gpus[i % len(gpus)] if gpus else None, cores=shares[i])
        for i in range(workers)
    ]


def _split(cores: list[int], parts: int) -> list[tuple[int, ...]]:
    """``cores`` in ``parts`` disjoint, contiguous, near-equal sets; with fewer cores than parts,
    each part gets one core, round-robin."""
    if parts >= len(cores):
        return [(cores[i % len(cores)],) for i in range(parts)]
    size, extra = divmod(len(cores), parts)
    shares, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        shares.append(tuple(cores[start:end]))
        start = end
    return shares


def visible_gpus() -> list[str]:
    """The GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` would name them for a child."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        names = [n.strip() for n in listed.split(",") if n.strip()]
        return names[: torch.cuda.device_count()]
    return [str(i) for i in range(torch.cuda.device_count())]


def usable_cores() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def parse_gpus(text: str) -> list[str]:
    """``--gpus 0,2,3`` as a list; ValueError naming the value when it is empty or repeats."""
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ValueError(f"--gpus must be a comma-separated list of GPUs but got {text!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"--gpus must name each GPU once but got {text!r}")
    return names

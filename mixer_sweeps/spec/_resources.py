"""Will a run fit the machine? Its memory, estimated from the spec before anything is allocated.

The schema's bounds keep absurd numbers out, but values that are each plausible can still make a
run that no machine holds (``depth: 1024`` with ``embed_dim: 16384``). Allocating such a model
takes minutes and ends in an out-of-memory kill, so :func:`check_memory` compares an estimate
with the memory the device has free, and names the fields that make the run big. Many small
runs at once are judged by :func:`workers_that_fit`, which also counts each worker process's own
memory (:data:`WORKER_PROCESS_BYTES`): a thousand tiny models fit, a thousand processes do not.

The estimate is a lower bound in float32: weights, their gradients and AdamW's two moments; the
activations one training batch keeps for the backward pass (or an evaluation batch, whichever is
larger); and the dataset, which sits on the device as uint8. A run refused here could not have
run; one let through may still need more (allocator slack, torch.compile, checkpoints).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mixer_sweeps.spec._errors import Problem, SpecError

if TYPE_CHECKING:
    import torch

    from mixer_sweeps.spec._run import RunSpec

FLOAT_BYTES = 4
WORKER_PROCESS_BYTES = 512 * 2**20
"""Host memory a worker process holds before its run allocates anything. Python with torch 2.x,
Optuna and this package imported (on CPU, after one backward pass) measured 290 MiB of its own
(private anonymous pages) and 750 MiB resident in all, the rest libraries that processes share
(/proc/self/smaps_rollup); the allocator and threads grow it during training. 512 MiB is the
lower end of what each extra process takes: 1,024 workers of a tiny model need 512 GiB."""

MEMORY_FIELDS = (
    "model.embed_dim",
    "model.depth",
    "model.channel_mlp_dim",
    "model.token_mlp_dim",
    "model.patch_size",
    "optim.batch_size",
    "train.eval_batch_size",
    "augment.crop_padding",
)
"""The spec fields the estimate depends on (besides the dataset)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at least, by what they hold."""

    parameters: int
    parameter_bytes: int
    """Weights, gradients and AdamW's two moments."""
    activation_bytes: int
    """Kept for the backward pass of one training batch, or held by one evaluation batch."""
    data_bytes: int
    """The dataset's images as uint8."""

    @property
    def total(self) -> int:
        return self.parameter_bytes + self.activation_bytes + self.data_bytes


@dataclass(frozen=True)
class WorkersFit:
    """How many worker processes, each running one run, the scarcest memory holds."""

    fit: int | None
    """None when the free memory cannot be found out."""
    free: int
    where: str
    process_bytes: int
    """Of that memory, what each worker process holds for itself."""
    run_bytes: int
    """Of that memory, what each worker's run needs."""

    @property
    def each(self) -> int:
        return self.process_bytes + self.run_bytes


def estimate_memory(spec: RunSpec) -> MemoryEstimate:
    """The least memory ``spec``'s run needs on its device (see the module's docstring)."""
    return _estimate(_sizes(spec), spec.data.dataset)


def check_memory(spec: RunSpec, device: torch.device | str, *, source: str) -> MemoryEstimate:
    """Raise :class:`SpecError` if the run cannot fit ``device``'s memory.

    Args:
        device: the resolved device (``cuda:0``, not ``auto``).
        source: names the spec in the error.

    Returns:
        The estimate (also when the free memory cannot be found out, and nothing is checked).
    """
    sizes = _sizes(spec)
    estimate = _estimate(sizes, spec.data.dataset)
    free, where = available_memory(device)
    needed = estimate.total
    if free is None or needed <= free:
        return estimate
    drivers = _drivers(sizes, spec.data.dataset)
    shown = ", ".join(f"{d}={sizes[d]}" for d in drivers)
    message = (
        f"the run needs at least {format_bytes(needed)} of memory ({estimate.parameters:,}"
        f" parameters with gradients and AdamW state: {format_bytes(estimate.parameter_bytes)};"
        f" activations: {format_bytes(estimate.activation_bytes)}) but there is only"
        f" {format_bytes(free)} of {where}; it grows with {shown}"
    )
    raise SpecError(source, [Problem(drivers[0], message)])


def workers_that_fit(spec: RunSpec, device: torch.device | str) -> WorkersFit:
    """How many new worker processes, each running ``spec``'s run, fit this machine at once.

    Each holds :data:`WORKER_PROCESS_BYTES` of the host's memory for itself. On the CPU its run
    is in that memory too; on cuda the runs are spread over the GPUs, one GPU each in turn (as
    a study places its workers), and the scarcer of the host and the GPUs decides.
    """
    run = estimate_memory(spec).total
    host_free, host = available_memory("cpu")
    if _device_type(device) != "cuda":
        fit = None if host_free is None else host_free // (WORKER_PROCESS_BYTES + run)
        return WorkersFit(fit, host_free or 0, host, WORKER_PROCESS_BYTES, run)
    import torch

    gpus = max(1, torch.cuda.device_count())
    gpu_free, gpu = available_memory(device)
    on_host = None if host_free is None else host_free // WORKER_PROCESS_BYTES
    on_gpus = None if gpu_free is None else gpus * (gpu_free // max(1, run))
    if on_gpus is not None and (on_host is None or on_gpus < on_host):
        where = gpu if gpus == 1 else f"{gpu}, times {gpus} GPUs"
        return WorkersFit(on_gpus, gpus * (gpu_free or 0), where, 0, run)
    return WorkersFit(on_host, host_free or 0, host, WORKER_PROCESS_BYTES, 0)


def available_memory(device: torch.device | str) -> tuple[int | None, str]:
    """Bytes a run on ``device`` can allocate, and what that memory is called.

    On cuda: the GPU's free memory if this process already uses the GPU, else its total memory
    (asking for the free memory would create a CUDA context, which a study's parent process,
    that only watches its workers, should not hold). Otherwise the host's available RAM, from
    psutil when it is installed, else ``/proc/meminfo``. None when it cannot be found out.
    """
    if _device_type(device) != "cuda":
        return _host_available(), "this machine's available RAM"
    import torch

    device = torch.device(device)
    index = device.index if device.index is not None else 0
    try:
        if torch.cuda.is_initialized():
            free, _total = torch.cuda.mem_get_info(index)
            return int(free), f"free memory on cuda:{index}"
        total = torch.cuda.get_device_properties(index).total_memory
    except (RuntimeError, AssertionError, ValueError):
        return None, str(device)
    return int(total), f"memory on cuda:{index} in all"


def _device_type(device: torch.device | str) -> str:
    """``cuda`` for ``cuda:1``; read from the name, so that a CPU run is checked without torch."""
    return getattr(device, "type", None) or str(device).split(":")[0]


def _host_available() -> int | None:
    try:
        import psutil
    except ImportError:
        pass
    else:
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sizes(spec: RunSpec) -> dict[str, int]:
    return {
        "model.embed_dim": spec.model.embed_dim,
        "model.depth": spec.model.depth,
        "model.channel_mlp_dim": spec.model.channel_mlp_dim,
        "model.token_mlp_dim": spec.model.token_mlp_dim,
        "model.patch_size": spec.model.patch_size,
        "optim.batch_size": spec.optim.batch_size,
        "train.eval_batch_size": spec.train.eval_batch_size,
        "augment.crop_padding": spec.augment.crop_padding if spec.augment.random_crop else 0,
    }


def _estimate(sizes: Mapping[str, float], dataset: str) -> MemoryEstimate:
    from mixer_sweeps.data import DATASETS

    info = DATASETS[dataset]
    side = info.image_size
    channels = info.in_channels
    c = sizes["model.embed_dim"]
    depth = sizes["model.depth"]
    d_c = sizes["model.channel_mlp_dim"]
    d_s = sizes["model.token_mlp_dim"]
    patch = sizes["model.patch_size"]
    n = (side / patch) ** 2
    pad = sizes["augment.crop_padding"]
    images = info.train_size + info.test_size

    block = 4 * c + (2 * n * d_s + d_s + n) + (2 * c * d_c + d_c + c)
    params = channels * patch * patch * c + c + depth * block + 2 * c + c * info.num_classes
    params += info.num_classes

    train_batch = min(sizes["optim.batch_size"], info.train_size)
    per_image = depth * (4 * n * c + 2 * c * d_s + 2 * n * d_c) + n * c
    per_image += 3 * channels * side * side + channels * (side + 2 * pad) ** 2 / FLOAT_BYTES
    eval_batch = min(sizes["train.eval_batch_size"], images)
    eval_per_image = 2 * max(n * c, c * d_s, n * d_c) + channels * side * side
    activations = max(train_batch * per_image, eval_batch * eval_per_image) * FLOAT_BYTES

    return MemoryEstimate(
        parameters=int(params),
        parameter_bytes=int(4 * params * FLOAT_BYTES),
        activation_bytes=int(activations),
        data_bytes=images * channels * side * side,
    )


def _drivers(sizes: dict[str, int], dataset: str) -> list[str]:
    """The fields whose halving (doubling, for the patch) shrinks the estimate most, first."""
    total = _estimate(sizes, dataset).total
    ratios = []
    for name in MEMORY_FIELDS:
        value = sizes[name]
        changed = value * 2 if name == "model.patch_size" else value / 2
        ratios.append((_estimate({**sizes, name: changed}, dataset).total / total, name))
    ratios.sort()
    strong = [name for ratio, name in ratios if ratio <= 0.8]
    return strong or [ratios[0][1]]


def format_bytes(count: float) -> str:
    """``1.5 GiB``: a number of bytes for people."""
    if count < 1024:
        return f"{count:,.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024
        if count < 1024 or unit == "TiB":
            break
    return f"{count:,.1f} {unit}"

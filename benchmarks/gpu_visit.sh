#!/usr/bin/env bash
# One short visit to a lent GPU machine (the `device` tool's `run`, carrying the wheels in .whl/
# that its image lacks: pydantic, pydantic-core, annotated-types, typing-inspection,
# typing-extensions). Prints the CUDA tests, the throughput benchmark on two presets (it also
# prints the on-device augmentation alone) and a real `sweeps train` on cuda; about 3 minutes.
#   run(command="bash benchmarks/gpu_visit.sh", carry=[".whl"], timeout_s=420)
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi -L
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_augment.py tests/test_trainer.py -k cuda 2>&1 | tail -3
for preset in mixer-nano mixer-pico; do
    timeout 90 python3 benchmarks/throughput.py --device cuda --preset $preset --batch-size 512 \
        --steps 100 --repeats 2 --workers 14 2>&1 | tee "$OUT/throughput-$preset.txt"
done
timeout 60 python3 -m mixer_sweeps train specs/synthetic_throughput.yaml --device cuda --out /tmp/tp 2>&1 | tee "$OUT/train-synthetic.txt"

# One image for study workers: `sweeps run` against a shared Optuna storage.
# GPU workers: with the NVIDIA container toolkit, add docker-compose.gpu.yml (a device reservation).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN pip install "torch==2.14.1" "torchvision==0.29.1"
COPY pyproject.toml README.md ./
COPY mixer_sweeps ./mixer_sweeps
RUN pip install .
COPY specs ./specs
COPY studies ./studies

ENTRYPOINT ["sweeps"]
CMD ["--help"]

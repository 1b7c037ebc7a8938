"""docker-compose.yml as Compose itself reads it (``docker compose config``), where Compose exists.

No Docker engine is needed: ``config`` only parses, interpolates and validates the files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO

STUDY = "studies/quickstart.yaml"


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, stdin=subprocess.DEVNULL
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def config(*files: str, env: dict[str, str] | None = None) -> dict:
    command = compose_command()
    if command is None:
        pytest.skip(
            "no Compose: neither `docker compose` nor `docker-compose` is installed"
            " (scripts/setup --dev installs Debian's docker-compose when run as root)"
        )
    args = [a for f in files for a in ("-f", f)]
    result = subprocess.run(
        [*command, *args, "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "STUDY": STUDY, **(env or {})},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_workers_share_the_storage_with_the_dashboard_and_start_only_on_a_valid_study() -> None:
    services = config("docker-compose.yml", env={"POSTGRES_PASSWORD": "s3cret"})["services"]
    worker, dashboard, validate = services["worker"], services["dashboard"], services["validate"]
    storage = worker["command"][worker["command"].index("--storage") + 1]
    assert storage == "postgresql://sweeps:s3cret@postgres:5432/sweeps"
    assert dashboard["environment"]["STORAGE"] == storage
    assert worker["command"][:2] == ["run", STUDY]
    assert validate["command"] == ["validate", STUDY]
    assert worker["depends_on"]["validate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Bad input exits 2 in `validate`, once; a crashing worker is restarted a bounded number of
    # times, never in an endless loop.
    assert validate.get("restart") in (None, "no")
    assert worker["restart"].startswith("on-failure:")
    assert (REPO / Path(STUDY)).is_file()


def test_the_gpu_override_reserves_the_gpus_for_workers_only() -> None:
    services = config("docker-compose.yml", "docker-compose.gpu.yml")["services"]
    (device,) = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] == "all"
    assert "deploy" not in services["dashboard"] and "deploy" not in services["postgres"]

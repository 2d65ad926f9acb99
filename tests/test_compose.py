"""docker-compose.yml: validated by `docker compose config` where the plugin exists (no engine
runs here), and checked for what the deployment relies on in every case."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[1]


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def settings_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return {k: str(v) for k, v in env.items()}


def test_services_and_their_order() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["worker"]["depends_on"]["api"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in services[name], name


def test_worker_reserves_a_gpu_and_talks_only_to_api_and_broker() -> None:
    services = compose()["services"]
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    worker, api = settings_of(services["worker"]), settings_of(services["api"])
    assert worker["FITLENS_API_URL"] == "http://api:8000"
    assert worker["REDIS_URL"] == api["REDIS_URL"] == "redis://redis:6379/0"
    assert worker["DATABASE_URL"] == ""  # the worker never touches the database
    assert api["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert api["FITLENS_QUEUE"] == "celery"


def test_images_come_from_the_dockerfile_targets() -> None:
    services = compose()["services"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name in ("migrate", "api", "worker"):
        target = services[name]["build"]["target"]
        assert f"AS {target}" in dockerfile, name


def compose_command() -> list[str] | None:
    """Compose v2 (`docker compose`) where the plugin is installed, else v1 (`docker-compose`)."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose (v2 plugin) or docker-compose (v1) on this machine")
    proc = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    # And a broken file is refused, so the check above can fail.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    image: x\n    depends_on: 12\n")
    try:
        bad = subprocess.run(
            [*command, "-f", str(broken), "config", "--quiet"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    finally:
        broken.unlink()
    assert bad.returncode != 0

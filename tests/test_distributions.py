"""Two distributions from one repository: the client (./pyproject.toml) installs the
``fitlens`` package alone, so a user's own ``api`` or ``trainer`` module never collides with
ours; the server (server/pyproject.toml) holds api, worker, trainer and stack."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PIP = (sys.executable, "-m", "pip")


def _wheel(project: Path, out: Path) -> Path:
    subprocess.run(
        [*PIP, "wheel", "-q", "--no-deps", "--no-build-isolation", str(project), "-w", str(out)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def _top_level(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = {n.split("/")[0] for n in archive.namelist()}
    return {n for n in names if not n.endswith(".dist-info")}


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _wheel(ROOT, tmp_path_factory.mktemp("client"))


def test_the_client_wheel_holds_fitlens_alone(client_wheel: Path) -> None:
    assert _top_level(client_wheel) == {"fitlens"}


def test_the_server_wheel_holds_the_server_and_not_the_client(tmp_path: Path) -> None:
    wheel = _wheel(ROOT / "server", tmp_path)
    assert _top_level(wheel) == {"api", "trainer", "worker", "stack"}
    with zipfile.ZipFile(wheel) as archive:  # the dashboard's pages travel with the API
        assert "api/dashboard/static/index.html" in archive.namelist()


def test_a_clean_environment_with_the_client_has_no_server_package(
    client_wheel: Path, tmp_path: Path
) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    subprocess.run(
        [*PIP, "--python", str(python), "install", "-q", "--no-deps", str(client_wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import importlib.util as u; "
        "print(sorted(m for m in ('fitlens', 'api', 'trainer', 'worker', 'stack') "
        f"if u.find_spec(m)), u.find_spec('fitlens').origin.startswith({str(env)!r}))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['fitlens']", "True"]

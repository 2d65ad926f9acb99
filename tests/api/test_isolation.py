"""api/ never imports torch: the tracking server installs and starts without a DL stack."""

from __future__ import annotations

import subprocess
import sys


def test_serving_the_api_imports_no_torch(tmp_path: object) -> None:
    code = (
        "import sys, tempfile\n"
        "from fastapi.testclient import TestClient\n"
        "from api.core.config import Settings\n"
        "from api.core.db import run_migrations\n"
        "from api.main import create_app\n"
        "url = f'sqlite:///{tempfile.mkdtemp()}/iso.db'\n"
        "run_migrations(url)\n"
        "app = create_app(Settings(database_url=url))\n"
        "_, token = app.state.store.people.create_user('iso', team='iso')\n"
        "client = TestClient(app, headers={'Authorization': f'Bearer {token}'})\n"
        "run = client.post('/api/v1/jobs', json={'spec': {'model': {'kind': 'cnn'}}}).json()\n"
        "assert client.get(f\"/api/v1/runs/{run['id']}/curves\").status_code == 200\n"
        "print([m for m in ('torch', 'torchvision', 'numpy', 'sklearn') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"

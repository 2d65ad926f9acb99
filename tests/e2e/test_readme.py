"""The README's walked blocks (marked ``<!-- walk -->``) run as written, in order, on a fresh
database: a new user's first steps must work."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from stack.launch import ROOT, free_port


def walked_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"<!-- walk -->\n```bash\n(.*?)```", readme, re.S)


def test_the_readme_walks_through_as_written() -> None:
    blocks = walked_blocks()
    assert len(blocks) >= 3
    port = free_port()
    # As written, except: a free port, and curl failing on an HTTP error (the README's plain
    # `curl -s` shows error bodies to a person; a script must notice them).
    script = "\n".join(blocks).replace("localhost:8000", f"localhost:{port}")
    script = script.replace("--port 8000", f"--port {port}")
    script = script.replace("curl -s ", "curl -sS --fail-with-body ")
    script = script.replace("until curl -sS --fail-with-body ", "until curl -s ")
    tmp = Path(tempfile.mkdtemp(prefix="fitlens-readme-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'readme.db'}",
        "FITLENS_BROKER_DIR": str(tmp / "broker"),
    }
    env.pop("FITLENS_QUEUE", None)
    proc = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n{script}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"{out[-3000:]}\n{proc.stderr[-3000:]}"
    assert '{"status":"ok","database":"ok"' in out
    assert '"project":"mnist-reg"' in out and '"created_by":"alice"' in out
    assert '"invited":[{"user":"vera","role":"viewer"}]' in out
    # Coming from MLflow or TensorBoard: MLflow's client logged, the logs imported once.
    assert re.search(r"^mlflow run \d+ logged$", out, re.M)
    assert re.search(r"^run \d+ 'mlp': new, 60 of 60 points added, 20 histograms$", out, re.M)
    assert re.search(r"^run \d+ 'mlp': unchanged, 0 of 60 points added", out, re.M)
    assert '"project":"speech"' in out
    assert '"members":30' in out and '"members":12' in out  # the studies, queued
    assert '"status":{"queued":30}' in out and '"study_id":2' in out
    # In two teams, the team is named: the curl's study, the CLI's study and run, the example.
    assert '"members":2' in out and re.search(r"study \d+: \d+ runs", out)
    assert re.search(r"run \d+ \(.*\) queued", out)
    assert re.search(r"^run \d+: http://localhost:\d+/#/runs/\d+$", out, re.M)
    # The job submitted before any worker exists waits, handed to the on-disk queue.
    assert list((tmp / "broker" / "queue").iterdir())

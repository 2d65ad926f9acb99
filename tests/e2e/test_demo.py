"""The README's first command (minus setup): the embedded pipeline ends with the table."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from stack.launch import free_port
from tests.e2e.conftest import TOKEN_PATTERN

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_the_seed_comparison_through_the_pipeline(tmp_path: Path) -> None:
    shutil.rmtree(ROOT / "control", ignore_errors=True)  # kombu's default, left by old runs
    env_keep = {"PATH", "HOME", "LANG", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k in env_keep}  # embedded defaults only
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stack.demo",
            "--state-dir",
            str(tmp_path / "state"),
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    # Per-epoch progress for every run, then each one's end.
    for name in (
        "seed001_no_regularization",
        "seed001_dropout",
        "seed001_l1",
        "seed001_l2",
        "seed001_reduce_lr_on_plateau",
    ):
        assert re.search(rf"\[{name}\s*\] epoch 30 ", out), name
        assert re.search(rf"\[{name}\s*\] succeeded", out), name
        row = re.search(rf"^{name}\s+(\d+)\s+([\d.]+)\s+([+-][\d.]+)\s+([\d.]+)%$", out, re.M)
        assert row, name
        assert 1 <= int(row.group(1)) <= 30 and 50 < float(row.group(4)) <= 100
    assert "compare: http://127.0.0.1:" in out
    assert (tmp_path / "state" / "fitlens.db").exists()  # SQLite: no server needed
    # It ran as a user, with tokens, and printed or logged none of them.
    logs = [p.read_text() for p in (tmp_path / "state").glob("*.log")]
    assert len(logs) == 2 and "succeeded" in logs[1] + logs[0]
    assert not TOKEN_PATTERN.search(out + proc.stderr + "".join(logs))
    # Each log says what happened, and a normal run ends without an error line.
    api_log = (tmp_path / "state" / "api.log").read_text()
    worker_log = (tmp_path / "state" / "worker.log").read_text()
    assert re.search(r"fitlens API on http://127\.0\.0\.1:\d+/api/v1", api_log), api_log
    assert len(re.findall(r"run \d+: attempt 1 started on cpu", worker_log)) == 5, worker_log
    assert (
        len(re.findall(r"fitlens\.worker\] run \d+ completed after 30 epochs", worker_log)) == 5
    ), worker_log
    assert "ERROR" not in worker_log + api_log
    # The broker's state stays in its folder, not in the directory the worker started in.
    assert not (ROOT / "control").exists()
    assert (tmp_path / "state" / "broker" / "control").is_dir()

"""The README's first command (minus setup): the embedded pipeline ends with the table."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from stack.launch import free_port
from tests.e2e.conftest import TOKEN_PATTERN

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_the_seed_comparison_study_through_the_pipeline(tmp_path: Path) -> None:
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
            # 12 runs of 10 epochs instead of the README's 30 of 30: the same path, faster.
            "--folds",
            "2",
            "--epochs",
            "10",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    names = (
        "no regularization",
        "dropout 0.5",
        "L1 1e-4",
        "L2 1e-2",
        "L2 1e-2 as the article writes it (unsquared norm)",
        "ReduceLROnPlateau",
    )
    # Every member ends, with its diagnosis; then the table and the effects.
    assert "12 runs (6 configurations x 2 folds" in out
    ended = re.findall(r"^\[\s*(\d+)/12\] (.+?)\s+fold (\d)\s+succeeded\s+best epoch", out, re.M)
    assert sorted((name.strip(), int(fold)) for _, name, fold in ended) == sorted(
        (n, f) for n in names for f in (1, 2)
    )
    for name in names:
        row = re.search(
            rf"^{re.escape(name)}\s+([\d.]+) \+- ([\d.]+)\s+([\d.]+)\s+([\d.]+)% \+- [\d.]+%",
            out,
            re.M,
        )
        assert row, name
        assert 0 < float(row.group(1)) < 3 and 1 <= float(row.group(3)) <= 10
        assert 50 < float(row.group(4)) <= 100
    effects = out[out.index("effect against no regularization") :]
    for name in names[1:]:
        assert re.search(
            rf"^{re.escape(name)}\s+min val loss [+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\]",
            effects,
            re.M,
        ), name
    assert re.search(r"table: http://127\.0\.0\.1:\d+/api/v1/studies/\d+/table", out)
    # It ends with the dashboard's address and how to sign in.
    assert re.search(r"^dashboard: http://127\.0\.0\.1:\d+/#/studies/\d+ \(sign in", out, re.M)
    assert "-m api admin token demo" in out
    assert (tmp_path / "state" / "fitlens.db").exists()  # SQLite: no server needed
    # It ran as a user, with tokens, and printed or logged none of them.
    logs = [p.read_text() for p in (tmp_path / "state").glob("*.log")]
    assert len(logs) == 3 and "succeeded" in "".join(logs)  # the API and two workers
    assert not TOKEN_PATTERN.search(out + proc.stderr + "".join(logs))
    # Each log says what happened, and a normal run ends without an error line.
    api_log = (tmp_path / "state" / "api.log").read_text()
    worker_log = "".join((tmp_path / "state" / f"worker{i}.log").read_text() for i in (1, 2))
    assert re.search(r"fitlens API on http://127\.0\.0\.1:\d+/api/v1", api_log), api_log
    assert len(re.findall(r"run \d+: attempt 1 started on cpu", worker_log)) == 12, worker_log
    assert (
        len(re.findall(r"fitlens\.worker\] run \d+ completed after 10 epochs", worker_log)) == 12
    ), worker_log
    assert "ERROR" not in worker_log + api_log
    # The broker's state stays in its folder, not in the directory the worker started in.
    assert not (ROOT / "control").exists()
    assert (tmp_path / "state" / "broker" / "control").is_dir()


def test_the_demo_stops_what_it_started_on_sigterm(tmp_path: Path) -> None:
    """Issue 22: `--keep-serving` left the API and both workers running after a SIGTERM."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "PYTHONPATH"}}
    env["PYTHONUNBUFFERED"] = "1"  # its lines as they are printed
    state = tmp_path / "state"
    args = ["--state-dir", str(state), "--port", str(free_port()), "--folds", "2", "--epochs", "1"]
    demo = subprocess.Popen(
        [sys.executable, "-m", "stack.demo", *args, "--keep-serving"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # until it says it keeps serving
            if "keep serving" in line:
                break
        else:
            raise AssertionError(f"the demo ended early: {demo.wait()}")
        started = [int(p) for p in (state / "pids").read_text().split()]
        assert len(started) == 3 and all(_alive(pid) for pid in started)
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 143
        assert not any(_alive(pid) for pid in started), "the demo left processes running"
    finally:
        demo.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

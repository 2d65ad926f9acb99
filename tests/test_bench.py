"""The benchmark script runs and prints the figures it promises (tiny settings)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_train_speed_prints_both_timings_ratio_and_accuracies() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "train_speed.py"),
            "--data",
            "digits",
            "--epochs",
            "3",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    seed = re.search(
        r"seed loop :\s+([\d.]+) s/epoch\s+final val accuracy\s+([\d.]+)%", proc.stdout
    )
    ours = re.search(
        r"fitlens   :\s+([\d.]+) s/epoch\s+final val accuracy\s+([\d.]+)%", proc.stdout
    )
    ratio = re.search(r"speed-up  :\s+([\d.]+)x", proc.stdout)
    assert seed and ours and ratio, proc.stdout
    assert float(seed.group(1)) > 0 and float(ours.group(1)) > 0
    # The printed ratio is the quotient of the two printed timings (up to their rounding).
    expected = float(seed.group(1)) / float(ours.group(1))
    assert abs(float(ratio.group(1)) - expected) <= 0.05 * expected
    assert 50 < float(ours.group(2)) <= 100


def run_module(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_ingest_bench_starts_the_real_server_and_prints_a_rate() -> None:
    out = run_module(
        "bench.ingest",
        "--points",
        "20000",
        "--batches",
        "1000,5000",
        "--other-runs",
        "1",
        "--databases",
        "sqlite",
        "--protocols",
        "fitlens",
        "--formats",
        "points",
    )
    assert "holding 1 other runs of 25,000 points" in out, out
    assert "1,000 points a request: 20,000 points in 20 requests" in out, out
    assert "5,000 points a request: 20,000 points in 4 requests" in out, out
    rates = re.findall(r"ingest rate ([\d,]+) points/s", out)
    assert len(rates) == 2 and all(int(r.replace(",", "")) > 0 for r in rates), out
    floors = re.findall(r"raw sqlite3 floor at [\d,]+ a request: ([\d,]+) points/s", out)
    assert len(floors) == 2 and all(int(f.replace(",", "")) > 0 for f in floors), out


def test_ingest_bench_compares_mlflow_s_protocol_with_mlflow_s_own_server() -> None:
    out = run_module(
        "bench.ingest",
        *("--points", "8000", "--batches", "1000", "--other-runs", "0"),
        *("--databases", "sqlite", "--protocols", "fitlens,mlflow"),
    )
    assert "MLflow's protocol (log-batch of 1,000, sqlite), 8,000 points:" in out, out
    ours = re.search(r"fitlens /mlflow: ([\d,]+) points/s", out)
    theirs = re.search(r"MLflow's own server: ([\d,]+) points/s", out)
    native = re.search(r"ingest rate ([\d,]+) points/s", out)
    assert ours and theirs and native, out
    mlflow = int(theirs.group(1).replace(",", ""))
    ratio = int(ours.group(1).replace(",", "")) / mlflow
    # The printed ratio is of the printed rates (rounded to whole points/s: relative slack).
    assert math.isclose(ratio, _ratio(out), rel_tol=0.01, abs_tol=0.05), out
    # fitlens's own ingest against MLflow's server, of the rates this run printed
    native_ratio = re.search(r"sqlite, 1,000 points a request: ([\d.]+)x \(target 25x\)", out)
    assert native_ratio, out
    ours_native = int(native.group(1).replace(",", "")) / mlflow
    assert math.isclose(float(native_ratio.group(1)), ours_native, rel_tol=0.01, abs_tol=0.05)
    # ... and as fitlens's client sends them: columns, every point read back
    assert "1,000 points a request as columns: 8,000 points in 8 requests" in out, out
    assert re.search(r"sqlite, 1,000 points a request as columns: [\d.]+x \(target 25x\)", out)


def _ratio(out: str) -> float:
    found = re.search(r"fitlens / MLflow: ([\d.]+)x", out)
    assert found, out
    return float(found.group(1))


def test_load_bench_prints_both_phases_and_reads_back_every_point() -> None:
    out = run_module("bench.load", "--pollers", "4", "--writers", "1", "--seconds", "1.5")
    phases = re.findall(
        r"(no writers|1 writers): ([\d,]+) requests/s, p50 [\d.]+ ms, p99 [\d.]+ ms, "
        r"304 share ([\d.]+)%, errors (\d+)",
        out,
    )
    assert [p[0] for p in phases] == ["no writers", "1 writers"], out
    assert all(int(p[1].replace(",", "")) > 0 and p[3] == "0" for p in phases), out
    assert float(phases[0][2]) > 90  # nothing changes without writers: polls answer 304
    written = re.search(r"points written ([\d,]+), read back ([\d,]+)", out)
    assert written and written.group(1) == written.group(2), out
    assert re.search(r"throughput with writers / without: [\d.]+", out), out


def test_read_bench_prints_curve_and_poll_timings() -> None:
    out = run_module("bench.read", "--points", "20000", "--repeat", "5", "--csv-points", "20000")
    assert re.search(r"curves, 20,000 -> \d+ points: p50 [\d.]+ ms", out), out
    assert re.search(r"304 poll \(If-None-Match\): server p50 [\d.]+ ms", out), out
    assert re.search(r"metrics.csv, 20,000 points: p50 [\d.]+ ms", out), out
    full = re.search(r"curves at full resolution, 20,000 points: server p50 ([\d.]+) ms", out)
    assert full and float(full.group(1)) > 0, out
    assert re.search(r"curves pages, 20,000 points at full resolution: \d+ ms", out), out
    memory = re.search(
        r"metrics.jsonl, 20,000 points streamed: .*?(\d+) MiB before, (\d+) MiB", out
    )
    assert memory and int(memory.group(2)) < int(memory.group(1)) + 50, out


def test_read_bench_compares_the_two_reads_with_mlflow_s_own_server() -> None:
    out = run_module(
        "bench.read", "--points", "5000", "--repeat", "3", "--csv-points", "3000", "--mlflow"
    )
    for read in ("full", "downsampled"):
        found = re.search(
            rf"MLflow's own server, {read} read of 3,000 points: ([\d.]+) ms; fitlens ([\d.]+)x",
            out,
        )
        assert found and float(found.group(1)) > 0 and float(found.group(2)) > 0, out


def test_blocks_bench_prints_each_block_size_s_figures() -> None:
    out = run_module(
        "bench.blocks", "--sizes", "256,1024", "--points", "8000", "--bytes-points", "20000"
    )
    rows = re.findall(
        r"block\s+([\d,]+): ingest ([\d,]+) points/s \(([\d.]+)x\).*?([\d.]+) bytes/point", out
    )
    assert [r[0] for r in rows] == ["256", "1,024"], out
    assert rows[1][2] == "1.00" and all(float(r[3]) > 0 for r in rows), out


def test_storage_bench_prints_bytes_per_point_before_and_after() -> None:
    out = run_module("bench.storage", "--points", "20000", "--before", str(ROOT))
    sizes = re.findall(r": ([\d.]+) bytes/point", out)
    assert len(sizes) == 2 and all(float(s) > 0 for s in sizes), out
    assert re.search(r"before / fitlens: [\d.]+x", out), out


def test_study_bench_prints_the_read_figures_of_a_50_member_study() -> None:
    out = run_module("bench.study", "--skip-workers", "--repeat", "3")
    assert re.search(r"table of a 50-member study: server p50 [\d.]+ ms", out), out
    assert re.search(r"aggregate curves of a 50-member study .*: server p50 [\d.]+ ms", out), out


def test_door_bench_prints_each_answer_and_the_memory_it_cost() -> None:
    out = run_module("bench.door")
    rows = re.findall(r"answered (\w+)\s+peak memory \+\s*([\d.]+) MiB", out)
    assert [status for status, _ in rows] == ["401", "413", "413"], out
    assert float(rows[0][1]) < 20, out  # the anonymous upload was never read


def test_ab_reads_every_figure_of_a_line_by_its_words() -> None:
    from bench.ab import figures

    found = figures(
        "database: sqlite (file, WAL)\n"
        "ingest rate: 119,002 points/s   (request p50 74 ms, max 186 ms)\n"
        "curves, 1,000,000 -> 1000 points: p50 28.9 ms\n"
        "database: postgresql\n"
        "ingest rate: 98,000 points/s   (request p50 80 ms, max 200 ms)\n"
    )
    assert found == {
        "ingest rate: # points/s   (request p# # ms, max # ms)": [119002.0, 50.0, 74.0, 186.0],
        "curves, # -> # points: p# # ms": [1000000.0, 1000.0, 50.0, 28.9],
        "ingest rate: # points/s   (request p# # ms, max # ms) [2]": [98000.0, 50.0, 80.0, 200.0],
    }


def test_dashboard_bench_times_the_run_compare_and_study_pages_in_the_browser() -> None:
    out = run_module("bench.dashboard", "--points", "5000", "--repeat", "1")
    thirty = re.search(
        r"\(30 epochs\): navigation to charts drawn p50 (\d+) ms.*?(\d+) charts", out
    )
    assert thirty and int(thirty.group(1)) > 0 and int(thirty.group(2)) >= 9, out
    curve = re.search(r"5,000-point curve\): .*?p50 (\d+) ms.*?1 charts, ([\d,]+) points", out)
    assert curve and curve.group(2) == "1,000", out  # downsampled by the API, not the browser
    compare = re.search(r"compare page \(2 runs\): .*?p50 (\d+) ms.*?(\d+) charts", out)
    assert compare and int(compare.group(2)) >= 3, out  # loss, accuracy, gap (and histograms)
    study = re.search(r"study page .*?: .*?p50 (\d+) ms.*?(\d+) charts", out)
    assert study and int(study.group(2)) >= 6, out  # forests, a small multiple, the bands


def test_client_bench_prints_the_log_overhead_and_throughput() -> None:
    out = run_module("bench.client", "--calls", "2000")
    overhead = re.search(r"run\.log overhead: p50 ([\d.]+) us", out)
    assert overhead and float(overhead.group(1)) > 0, out
    assert re.search(
        r"sent 8,000 points in [\d.]+ s: [\d,]+ points/s by one client; 8,000 stored", out
    )


def test_hostile_prints_each_finding_and_none_gets_through() -> None:
    out = run_module("bench.hostile")
    assert "reused id: 0 leaks of 42 cached reads in 7 trials" in out
    assert re.search(r"1,000,000 \{\} to /metrics: 413 in [\d.]+ s; /healthz <= [\d.]+ s", out)
    assert re.search(r"500,000 unknown keys to /jobs: 413 in [\d.]+ s", out)
    assert "10,000 epochs): 422" in out and "at most 512 MiB" in out
    study = re.search(r"10\^16-member study: 422 in (\d+) ms; server peak resident (\d+) MiB", out)
    assert study and int(study.group(2)) < 1024, out


def suite_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.suite", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_suite_bench_prints_each_run_and_tells_green_from_red() -> None:
    """bench.suite on a small command: a real pytest run beside a hog, and a red run."""
    small = f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_layout.py"
    proc = suite_bench("--loaded", "1", "--hogs", "1", "--command", small)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = re.findall(
        r"^(\d)\. (quiet|1 hog)\s+(\d+):(\d\d) wall\s+green\s+(\d+) passed", proc.stdout, re.M
    )
    assert [(n, kind) for n, kind, *_ in rows] == [("1", "quiet"), ("2", "1 hog")], proc.stdout
    assert all(int(passed) >= 10 for *_, passed in rows)
    assert "quiet: 1 of 1 green" in proc.stdout and "1 hog: 1 of 1 green" in proc.stdout
    printed = "print('FAILED tests/x.py::t - boom'); print('1 failed, 2 passed in 0.1s')"
    red = f'{sys.executable} -c "{printed}"'
    proc = suite_bench("--quiet", "1", "--loaded", "0", "--command", red)
    assert proc.returncode == 1, proc.stdout
    assert re.search(r"1\. quiet .* RED \(exit 0\)\s+1 failed, 2 passed", proc.stdout), proc.stdout
    assert "failed: tests/x.py::t" in proc.stdout and "quiet: 0 of 1 green" in proc.stdout


def test_webhooks_bench_times_posts_with_and_without_a_hanging_receiver() -> None:
    out = run_module("bench.webhooks", "--rounds", "1", "--posts", "20")
    held = re.search(r"hanging connections held by the receiver: (\d+)", out)
    p50 = re.findall(r"(without|with) +a hanging webhook: p50 ([\d.]+) ms", out)
    ratio = re.search(r"p50 ratio with / without: ([\d.]+)", out)
    assert held and int(held.group(1)) >= 20, out  # the deliveries were really hanging
    assert [name for name, _ in p50] == ["without", "with"] and ratio, out
    without, with_ = (float(v) for _, v in p50)
    assert abs(float(ratio.group(1)) - with_ / without) <= 0.05 * with_ / without


def test_evaluation_cost_bench_prints_both_timings_and_their_ratio() -> None:
    out = run_module("bench.evaluation_cost", "--rounds", "1", "--epochs", "3")
    on = re.search(r"with per-class evaluation\s+: ([\d.]+) s per run", out)
    off = re.search(r"without\s+: ([\d.]+) s per run", out)
    ratio = re.search(r"ratio \(budget 1.20\)\s+: ([\d.]+)", out)
    assert on and off and ratio, out
    assert "per class at epochs [1, 2, 3]" in out
    expected = float(on.group(1)) / float(off.group(1))
    assert abs(float(ratio.group(1)) - expected) <= 0.05 * expected


def test_optimism_bench_prints_the_winner_and_its_optimism() -> None:
    out = run_module("bench.optimism", "--configs", "3", "--folds", "2", "--epochs", "2")
    winner = re.search(r"val accuracy ([\d.]+)%  test accuracy ([\d.]+)%", out)
    optimism = re.search(r"winner's optimism: ([+-][\d.]+)%  95% interval \[", out)
    assert winner and optimism and "the sweep's average optimism" in out, out
    difference = float(winner.group(1)) - float(winner.group(2))
    assert abs(float(optimism.group(1)) - difference) <= 0.011  # the printed rounding

"""Time from navigation to a page's charts drawn, in real headless Chromium: a run page, a
run with a long curve, the compare page of two runs and a study page.

    python -m bench.dashboard               # 30-epoch runs and a 1,000,000-point curve
    python -m bench.dashboard --points 100000 --repeat 3

The real API (uvicorn) serves the dashboard; the runs (and a 2 x 2-seed study's members) are
fed over HTTP as a worker feeds them (metrics, per-layer histograms, the evaluation). Each
figure is the browser's own Performance API: the page marks ``fitlens:charts-drawn`` once
every chart of the page is drawn, and its ``startTime`` counts from the start of navigation
(a fresh document each time: HTML, ECharts, the API reads, drawing). Target: <= 1 s each on
this machine.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from typing import Any

import httpx

from bench.server import api_client
from stack.browser import chromium

KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "gap", "lr")
PARAMS = {"fc1.weight": (64, 1000), "fc1.bias": (1000,), "fc2.weight": (10, 1000)}


def _started(http: httpx.Client, name: str, epochs: int) -> int:
    run = http.post("/api/v1/jobs", json={"spec": {"epochs": epochs}, "name": name})
    run_id = int(run.raise_for_status().json()["id"])
    http.post(f"/api/v1/runs/{run_id}/status", json={"status": "running"}).raise_for_status()
    return run_id


def _finish(http: httpx.Client, run_id: int) -> None:
    body = {"status": "succeeded", "attempt": 1}
    http.post(f"/api/v1/runs/{run_id}/status", json=body).raise_for_status()


def thirty_epochs(http: httpx.Client, name: str = "thirty epochs", seed: int = 0) -> int:
    """A digits-sized run as the worker reports it: 30 epochs of metrics and histograms, an
    LR cut, then the evaluation (confusion matrix, per-class figures, ROC, weight maps)."""
    run_id = _started(http, name, 30)
    _feed(http, run_id, seed)
    return run_id


def study(http: httpx.Client) -> int:
    """A dropout sweep with two seeds (4 members), each member fed as thirty_epochs is."""
    design = {"sweep": {"model.dropout": [0, 0.5]}, "seeds": [1, 2]}
    made = http.post("/api/v1/studies", json={"spec": {"epochs": 30}, "design": design})
    study_id = int(made.raise_for_status().json()["id"])
    members = http.get("/api/v1/runs", params={"study": study_id}).json()["items"]
    for i, member in enumerate(members):
        http.post(f"/api/v1/runs/{member['id']}/status", json={"status": "running"})
        _feed(http, member["id"], seed=10 + i, shift=0.05 * member["study_config"])
    return study_id


def _feed(http: httpx.Client, run_id: int, seed: int, shift: float = 0.0) -> None:
    rng = random.Random(seed)
    post = f"/api/v1/runs/{run_id}"
    for epoch in range(1, 31):
        noise = rng.random() * 0.02
        train = 2.3 * math.exp(-epoch / 6) + noise
        val = 2.3 * math.exp(-epoch / 8) + 0.004 * epoch + shift + noise
        values = [train, val, 1 - train / 3, 1 - val / 3, val - train, 1e-3]
        points = [{"key": k, "step": epoch, "value": v} for k, v in zip(KEYS, values, strict=True)]
        http.post(f"{post}/metrics?attempt=1", json={"points": points}).raise_for_status()
        hists = []
        for param in PARAMS:
            counts = [rng.random() * 100 * math.exp(-((b - 32) ** 2) / 200) for b in range(64)]
            edges = [(b - 32) / 100 * (1 + epoch / 30) for b in range(65)]
            hists.append({"param": param, "step": epoch, "edges": edges, "counts": counts})
        http.post(f"{post}/histograms?attempt=1", json={"histograms": hists}).raise_for_status()
    cut = {"kind": "lr_change", "step": 20, "payload": {"old_lr": 1e-3, "new_lr": 5e-4}}
    http.post(f"{post}/events?attempt=1", json={"events": [cut]}).raise_for_status()
    labels = [str(i) for i in range(10)]
    fpr = [i / 20 for i in range(21)]
    evaluation = {
        "epoch": 30,
        "best_epoch": 24,
        "best_val_loss": 0.3,
        "labels": labels,
        "confusion_matrix": [[30 if i == j else 1 for j in range(10)] for i in range(10)],
        "per_class": [
            {"label": c, "precision": 0.9, "recall": 0.88, "f1": 0.89, "support": 36}
            for c in labels
        ],
        "accuracy": 0.9,
        "macro_f1": 0.89,
        "roc": [
            {"label": c, "fpr": fpr, "tpr": [x**0.2 for x in fpr], "auc": 0.95} for c in labels
        ],
        "macro_auc": 0.95,
        "weight_matrices": [
            {
                "param": p,
                "shape": [64, 1000],
                "values": [[rng.gauss(0, 0.1) for _ in range(64)] for _ in range(64)],
            }
            for p in ("fc1.weight",)
        ],
    }
    http.post(f"{post}/evaluation?attempt=1", json=evaluation).raise_for_status()
    _finish(http, run_id)


def long_curve(http: httpx.Client, points: int, batch: int = 10_000) -> int:
    """One curve of ``points`` steps (a noisy decaying loss with a spike), fed in batches."""
    rng = random.Random(1)
    run_id = _started(http, f"{points:,} points", 1)
    for start in range(0, points, batch):
        steps = range(start + 1, min(points, start + batch) + 1)
        body = {
            "points": [
                {
                    "key": "train_loss",
                    "step": s,
                    "value": 2 * math.exp(-s / points * 5)
                    + rng.random() * 0.05
                    + (3.0 if s == points // 3 else 0.0),
                }
                for s in steps
            ]
        }
        http.post(f"/api/v1/runs/{run_id}/metrics?attempt=1", json=body).raise_for_status()
    _finish(http, run_id)
    return run_id


def drawn_ms(page: Any, base: str, route: str, fresh: int) -> float:
    """Milliseconds from navigation start to the page's charts-drawn mark (a new document)."""
    page.goto(f"{base}/?n={fresh}#{route}")
    mark = "performance.getEntriesByName('fitlens:charts-drawn')"
    for _ in range(600):
        found = page.evaluate(f"{mark}.map(e => e.startTime)")
        if found:
            return float(found[0])
        page.wait_for_timeout(50)
    raise RuntimeError(f"{route}: the charts were not drawn in 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with api_client(timeout=120) as http:
        base = str(http.base_url).rstrip("/")
        token = http.headers["authorization"].split(" ", 1)[1]
        first, second = thirty_epochs(http), thirty_epochs(http, "thirty again", seed=1)
        pages = {
            "run page (30 epochs)": f"/runs/{first}",
            f"run page ({args.points:,}-point curve)": f"/runs/{long_curve(http, args.points)}",
            "compare page (2 runs)": f"/compare?runs={first},{second}",
            "study page (2 configurations x 2 seeds)": f"/studies/{study(http)}",
        }
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"{base}/")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_selector("#runs-table")
            fresh = 0
            for name, route in pages.items():
                times = []
                for _ in range(args.repeat + 1):  # the first warms the browser's cache
                    fresh += 1
                    times.append(drawn_ms(page, base, route, fresh))
                charts = page.evaluate("window.fitlens.charts()")
                drawn = sum(s["points"] for c in charts.values() for s in c)
                print(
                    f"{name}: navigation to charts drawn p50 {statistics.median(times[1:]):.0f} ms"
                    f" (min {min(times[1:]):.0f}, max {max(times[1:]):.0f}, cold "
                    f"{times[0]:.0f}; {len(charts)} charts, {drawn:,} points drawn; target <= "
                    "1000 ms)"
                )


if __name__ == "__main__":
    main()

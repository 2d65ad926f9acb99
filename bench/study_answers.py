"""Issue 25's answers on real runs: a real API and 2 Celery workers train four studies on
digits, and the figures are the API's own answers.

    python -m bench.study_answers
    python -m bench.study_answers --folds 3 --x 0.05

1. Intervals: the seed 001 comparison (examples/studies/seed001_comparison.json, 6
   configurations x 5 folds): each fix's effect on min_val_loss and final_gap with the plain
   paired t-test's interval (what effects answered before issue 25, recomputed from the
   members' diagnoses by api.studies.stats.paired_effect without the correction) and the
   API's corrected one; detectable before (the plain interval excludes 0) and now (p_holm).
2. Learning curves: examples/studies/digits_learning_curve.json (with --folds folds) under
   budget epochs (the old behaviour) and steps (the default): per size the steps trained and
   the min val loss; the power-law fits and the examples needed for a gap under --x.
3. An L2 path on the seed 001 base spec: regularization.l2 over 1e-5 to 1e-1 (5 values, log)
   x --folds folds: per value the min val loss, the weights' norm and near-zero share;
   lambda_min and lambda_1se.
4. A fix study: a run of the seed 001 base spec, then POST /runs/{id}/fix_study with --folds
   folds: the fixes ranked by their effect on min_val_loss and on final_gap.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import httpx

from api.studies.stats import paired_effect
from bench.study import study_stack

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "studies"


def example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    body.pop("project", None)
    return body


def finish(http: httpx.Client, study_id: int) -> dict[str, Any]:
    while not (study := http.get(f"/studies/{study_id}").json())["done"]:
        time.sleep(0.5)
    return dict(study)


def submit(http: httpx.Client, body: dict[str, Any]) -> int:
    return int(http.post("/studies", json=body).raise_for_status().json()["id"])


def interval(e: dict[str, Any]) -> str:
    if e["ci_low"] is None:
        return "-"
    return f"{e['mean']:+.3f} [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}]"


def intervals(http: httpx.Client, study_id: int) -> None:
    study = finish(http, study_id)
    runs = http.get("/runs", params={"study": study_id, "limit": 500}).json()["items"]
    effects = http.get(f"/studies/{study_id}/effects").json()
    print(f"\n1. {study['name']}: {study['members']} members, {effects['ci_method'][:60]}...")
    print(
        f"   {'fix':<28} {'value':<13} {'plain 95% CI (before)':<30} {'corrected (now)':<30} "
        "detectable before -> now"
    )
    for config in effects["configs"]:
        for name in ("min_val_loss", "final_gap"):
            replicates = {
                c: {
                    r["study_replicate"]: (r["diagnosis"] or {}).get(name)
                    for r in runs
                    if r["study_config"] == c
                }
                for c in (effects["baseline"], config["config"])
            }
            plain = paired_effect(replicates[effects["baseline"]], replicates[config["config"]])
            low, high = plain["ci_low"], plain["ci_high"]
            before = low is not None and high is not None and (low > 0 or high < 0)
            now = config["effects"][name]
            print(
                f"   {(config['name'] or '')[:28]:<28} {name:<13} {interval(plain):<30} "
                f"{interval(now):<30} {'yes' if before else 'no'} -> "
                f"{'yes' if now['detectable'] else 'no'} (p_holm {now['p_holm']:.3g})"
            )


def learning_curves(http: httpx.Client, folds: int, target: float) -> None:
    curves = {}
    for budget in ("epochs", "steps"):
        body = example("digits_learning_curve")
        body["design"]["folds"] = {"k": folds}
        body["design"]["learning_curve"] = {
            "sizes": body["design"]["learning_curve"],
            "budget": budget,
        }
        body["name"] = f"learning curve, budget {budget}"
        study_id = submit(http, body)
        finish(http, study_id)
        curves[budget] = http.get(f"/studies/{study_id}/learning_curve", params={"x": target})
    print(f"\n2. digits learning curve x {folds} folds: per size, steps trained and min val loss")
    print(
        f"   {'n_train':>8} | {'epochs: steps':>13} {'best val loss':>13} | "
        f"{'steps: steps':>12} {'best val loss':>13}"
    )
    old, new = curves["epochs"].json(), curves["steps"].json()
    for a, b in zip(old["points"], new["points"], strict=True):
        print(
            f"   {a['n_train']:>8} | {a['values']['steps_trained']['mean']:>13.0f} "
            f"{a['values']['best_val_loss']['mean']:>13.4f} | "
            f"{b['values']['steps_trained']['mean']:>12.0f} "
            f"{b['values']['best_val_loss']['mean']:>13.4f}"
        )
    for budget, curve in (("epochs", old), ("steps", new)):
        for name, fit in curve["fits"].items():
            params = ", ".join(
                f"{k} {p['value']:.3g} [{p['ci_low'] or float('nan'):.3g}, "
                f"{p['ci_high'] or float('nan'):.3g}]"
                for k, p in fit["params"].items()
            )
            print(f"   budget {budget:<6} {name:<12} {fit['law']}: {params} {fit['why']}")
        print(f"   budget {budget:<6} gap under {target}: {curve['examples_needed']['why']}")


def l2_path(http: httpx.Client, folds: int) -> None:
    body = example("seed001_comparison")
    body["design"] = {
        "path": {"field": "regularization.l2", "start": 1e-5, "stop": 1e-1, "count": 5},
        "folds": {"k": folds},
    }
    body["spec"]["histograms"] = {"every": 10}
    body["name"] = "L2 path"
    study_id = submit(http, body)
    finish(http, study_id)
    path = http.get(f"/studies/{study_id}/path").json()
    print(f"\n3. L2 path x {folds} folds on the seed 001 base spec")
    print(f"   {'l2':>8} {'min val loss':>16} {'final gap':>10} {'||w||':>8} {'near 0':>7}")
    for point in path["points"]:
        v = point["values"]
        print(
            f"   {point['value']:>8.0e} {v['min_val_loss']['mean']:>8.4f} +- "
            f"{v['min_val_loss']['std'] or 0:.4f} {v['final_gap']['mean']:>10.4f} "
            f"{v['weight_l2']['mean']:>8.2f} {v['near_zero']['mean']:>7.1%}"
        )
    print(
        f"   lambda_min {path['lambda_min']:.0e}, lambda_1se {path['lambda_1se'] or 0:.0e} "
        f"(mean min val loss at most {path['threshold'] or 0:.4f})"
    )


def fix_study(http: httpx.Client, folds: int) -> None:
    spec = copy.deepcopy(example("seed001_comparison")["spec"])
    run = http.post("/jobs", json={"spec": spec}).raise_for_status().json()
    while http.get(f"/runs/{run['id']}").json()["status"] not in ("succeeded", "failed"):
        time.sleep(0.5)
    made = http.post(f"/runs/{run['id']}/fix_study", json={"folds": folds}).raise_for_status()
    study = made.json()
    finish(http, study["id"])
    effects = http.get(f"/studies/{study['id']}/effects").json()
    names = {c["config"]: c["name"] for c in effects["configs"]}
    by = {c["config"]: c["effects"] for c in effects["configs"]}
    print(f"\n4. fix study of run {run['id']} x {folds} folds (skipped: {study['skipped']})")
    for name in ("min_val_loss", "final_gap"):
        print(f"   ranked by {name}:")
        for rank, config in enumerate(effects["ranking"][name], 1):
            e = by[config][name]
            mark = "detectable" if e["detectable"] else ""
            print(f"     {rank:>2}. {names[config]:<18} {interval(e):<30} {mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=3, help="for parts 2 to 4")
    parser.add_argument("--x", type=float, default=0.05, help="the gap to bring under")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with study_stack(2) as http:
        http.timeout = httpx.Timeout(120)
        intervals(http, submit(http, example("seed001_comparison")))
        learning_curves(http, args.folds, args.x)
        l2_path(http, args.folds)
        fix_study(http, args.folds)
    print(f"\n{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()

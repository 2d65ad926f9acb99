"""``python -m trainer``: progress lines, JSON-lines events, exit codes; every example spec."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.__main__ import main
from trainer.events import EpochEnd, EventEnvelope

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.json"))


def test_cli_trains_prints_progress_and_writes_events(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"model": {"hidden": [16]}, "epochs": 3}))
    out = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "run", str(spec), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    progress = [line for line in proc.stdout.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in progress] == ["1/3", "2/3", "3/3"]
    assert all("val_loss" in line and "ETA" in line and "lr" in line for line in progress)
    events = [
        EventEnvelope.model_validate_json(f'{{"event": {line}}}').event
        for line in out.read_text().splitlines()
    ]
    assert [e.event for e in events] == [
        "run_started",
        "epoch",
        "epoch",
        "epoch",
        "evaluation",
        "evaluation",
        "run_ended",
    ]
    # The final evaluations: the validation split's in full, the training split's per class.
    assert [(e.split, e.final) for e in events if e.event == "evaluation"] == [
        ("val", True),
        ("train", True),
    ]


def test_cli_names_the_bad_field_and_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"optimizer": {"lr": -1}}))
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "run", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "optimizer.lr" in proc.stderr


def test_non_finite_values_survive_the_json_lines_round_trip(tmp_path: Path) -> None:
    spec = tmp_path / "diverge.json"
    spec.write_text(
        json.dumps(
            {
                "optimizer": {"name": "sgd", "lr": 10.0, "momentum": 0.9},
                "model": {"hidden": [64], "activation": "leaky_relu"},
                "dataset": {"normalize": "none"},
                "epochs": 2,
            }
        )
    )
    out = tmp_path / "events.jsonl"
    assert main(["run", str(spec), "--out", str(out), "--quiet"]) == 0
    lines = out.read_text().splitlines()
    epoch = json.loads(lines[1])  # strict JSON: no bare NaN tokens
    assert epoch["metrics"]["train_loss"] == "NaN"
    parsed = EventEnvelope.model_validate_json(f'{{"event": {lines[1]}}}').event
    assert isinstance(parsed, EpochEnd)
    assert math.isnan(parsed.metrics["train_loss"])


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_spec_runs(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    assert main(["run", str(example), "--out", str(out), "--quiet"]) == 0
    last = json.loads(out.read_text().splitlines()[-1])
    assert last["event"] == "run_ended" and last["status"] in ("completed", "early_stopped")


def test_examples_cover_every_seed_technique() -> None:
    specs = [json.loads(p.read_text()) for p in EXAMPLES]
    flat = json.dumps(specs)
    for needle in (
        '"dropout": 0.5',
        '"l1": 0.0001',
        '"l2": 0.01',
        '"reduce_on_plateau"',
        '"weight_decay": 0.0005',
        '"scheme": "normal"',
        '"early_stopping"',
        '"regression"',
        '"cnn"',
    ):
        assert needle in flat, needle

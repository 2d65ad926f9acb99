"""How the weights move (trainer.weights): norms, drift and update ratios as metrics, and the
gradient and update histograms, on real digits runs checked against each other."""

from __future__ import annotations

import pytest

from tests.trainer.conftest import Recorder
from trainer.loop import train
from trainer.spec import JobSpec

SPEC = {
    "dataset": {"name": "digits", "train_subset": 300},
    "model": {"hidden": [32]},
    "epochs": 12,
    "seed": 1,
}


def run(spec: dict) -> Recorder:
    recorder = Recorder()
    train(JobSpec.model_validate(spec), [recorder])
    return recorder


def test_norm_drift_and_update_ratio_of_every_weight_tensor_every_epoch() -> None:
    spec = {**SPEC, "histograms": {"include": ["weight", "grad", "update"]}}
    recorder = run(spec)
    first, *_ = recorder.epochs
    for name in ("fc1.weight", "fc2.weight"):
        for epoch in recorder.epochs:
            assert {f"weight_norm/{name}", f"drift/{name}", f"update_ratio/{name}"} <= set(
                epoch.metrics
            )
        # At the first epoch the previous weights are the first ones.
        assert first.metrics[f"drift/{name}"] == pytest.approx(
            first.metrics[f"update_ratio/{name}"]
        )
        drifts = [e.metrics[f"drift/{name}"] for e in recorder.epochs]
        assert drifts[-1] > drifts[0] > 0
    # The update histogram's L2 norm is the update ratio times the previous epoch's norm; the
    # weight histogram's is the weight norm.
    by = {(h.param, h.step): h for e in recorder.epochs for h in e.histograms}
    for e in recorder.epochs[1:]:
        before = recorder.epochs[e.epoch - 2].metrics["weight_norm/fc1.weight"]
        update = by[("update/fc1.weight", e.epoch)].l2
        assert update == pytest.approx(e.metrics["update_ratio/fc1.weight"] * before, rel=1e-5)
        weight = by[("fc1.weight", e.epoch)].l2
        assert weight == pytest.approx(e.metrics["weight_norm/fc1.weight"], rel=1e-5)
        grad = by[("grad/fc1.weight", e.epoch)]
        assert grad.numel == 32 * 64 and grad.l2 > 0
    assert not any(p.startswith(("grad/fc1.bias", "update/fc1.bias")) for p, _ in by)


def test_after_each_plateau_cut_the_update_ratio_falls_by_about_the_cut() -> None:
    """Adam's step is about lr-sized whatever the gradient, so the epoch's update shrinks
    with the learning rate: after a cut from lr to f * lr it falls by about f."""
    schedule = {"kind": "reduce_on_plateau", "factor": 0.1, "patience": 0, "min_lr": 1e-6}
    recorder = run({**SPEC, "epochs": 20, "optimizer": {"lr": 1e-2}, "lr_schedule": schedule})
    cuts = [c for e in recorder.epochs for c in e.lr_changes]
    assert len(cuts) >= 2
    ratios = {e.epoch: e.metrics["update_ratio/fc1.weight"] for e in recorder.epochs}
    for cut in cuts:
        if cut.epoch + 1 not in ratios:
            continue
        fell = ratios[cut.epoch + 1] / ratios[cut.epoch]
        factor = cut.new_lr / cut.old_lr
        assert factor / 4 < fell < factor * 4, (cut, fell)


def test_grad_and_update_histograms_need_their_tensors() -> None:
    with pytest.raises(ValueError, match="weight or bias too"):
        JobSpec.model_validate({"histograms": {"include": ["grad"]}})


def test_the_onset_epochs_weights_are_kept_when_the_news_comes_later() -> None:
    """The diagnosis names epoch 4 as the onset only after epoch 7 (its patience): the run
    still sends epoch 4's weights, a snapshot and a checkpoint, equal to what epoch 4 had."""
    import base64
    import io

    import torch

    recorder = Recorder()
    spec = JobSpec.model_validate({**SPEC, "epochs": 10})
    train(spec, [recorder], onset=lambda: 4 if len(recorder.epochs) >= 7 else None)
    assert recorder.ended is not None
    onset = [s for s in recorder.ended.snapshots if "onset" in s.why]
    assert {s.epoch for s in onset} == {4} and {s.param for s in onset} == {
        "fc1.weight",
        "fc2.weight",
    }
    scheduled = next(
        s for e in recorder.epochs for s in e.snapshots if (s.param, s.epoch) == ("fc1.weight", 4)
    )
    fc1 = next(s for s in onset if s.param == "fc1.weight")
    assert fc1.data == scheduled.data
    checkpoint = next(c for c in recorder.ended.checkpoints if c.name == "onset")
    state = torch.load(io.BytesIO(base64.b64decode(checkpoint.data)), weights_only=True)
    values = torch.frombuffer(bytearray(base64.b64decode(fc1.data)), dtype=torch.float32)
    assert checkpoint.epoch == 4 and torch.equal(state["fc1.weight"].flatten(), values)


def test_without_a_diagnosis_there_is_no_onset_to_keep() -> None:
    recorder = run({**SPEC, "epochs": 3})
    assert recorder.ended is not None
    assert [c.name for c in recorder.ended.checkpoints] == ["best", "last"]
    assert not any("onset" in s.why for s in recorder.ended.snapshots)

"""How a study's design becomes member specs (pure; the API's tests drive the rest)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.core.exceptions import Invalid
from api.studies.design import Design, expand

BASE = {"dataset": {"name": "digits"}, "epochs": 3}


def test_a_2x2_sweep_with_3_folds_makes_12_members_with_their_overrides() -> None:
    design = Design.model_validate(
        {
            "sweep": {"model.dropout": [0, 0.5], "optimizer.weight_decay": [0, 1e-4]},
            "folds": {"k": 3},
        }
    )
    out = expand(BASE, design, max_members=500)
    assert out.configs == [
        {"model.dropout": 0, "optimizer.weight_decay": 0},
        {"model.dropout": 0, "optimizer.weight_decay": 1e-4},
        {"model.dropout": 0.5, "optimizer.weight_decay": 0},
        {"model.dropout": 0.5, "optimizer.weight_decay": 1e-4},
    ]
    assert len(out.members) == 12
    for m in out.members:
        config = out.configs[m.config]
        assert m.spec.model.dropout == config["model.dropout"]
        assert m.spec.optimizer.weight_decay == config["optimizer.weight_decay"]
        assert m.spec.dataset.folds is not None
        assert (m.spec.dataset.folds.k, m.spec.dataset.folds.index) == (3, m.fold)
        assert m.replicate == m.fold and m.spec.epochs == 3
    assert sorted((m.config, m.fold) for m in out.members) == [
        (c, f) for c in range(4) for f in range(3)
    ]


def test_overrides_seeds_and_a_learning_curve() -> None:
    design = Design.model_validate(
        {
            "overrides": [{}, {"regularization.l2": 0.01, "regularization.l2_form": "norm"}],
            "seeds": [1, 2],
            "learning_curve": {"sizes": [0.5, 1.0, 200], "budget": "epochs"},
        }
    )
    out = expand(BASE, design, max_members=500)
    assert len(out.configs) == 6 and len(out.members) == 12
    assert out.configs[1] == {"dataset.train_fraction": 1.0}
    assert out.configs[5] == {
        "regularization.l2": 0.01,
        "regularization.l2_form": "norm",
        "dataset.train_subset": 200,
    }
    seeds = {(m.config, m.replicate): m.spec.seed for m in out.members}
    assert seeds[(0, 0)] == 1 and seeds[(0, 1)] == 2
    assert out.members[-1].spec.regularization.l2_form == "norm"


@pytest.mark.parametrize(
    ("design", "field", "words"),
    [
        ({"sweep": {"model.dropout": [0, 1.5]}}, "design.sweep.model.dropout", "1.5"),
        ({"overrides": [{}, {"optimizer.lr": -1}]}, "design.overrides.1.optimizer.lr", "-1"),
        ({"sweep": {"model.dropuot": [0.1]}}, "design.sweep.model.dropuot", "0.1"),
        ({"sweep": {"epochs.x": [1]}}, "design.sweep.epochs.x", "not an object"),
        ({"learning_curve": [5000]}, "design.learning_curve.sizes", "5000"),
        ({"learning_curve": [1]}, "design.learning_curve.budget", "official split"),
        ({"learning_curve": [2, 1.0], "epochs": 900}, "design.learning_curve.budget", "10000"),
        (
            {"path": {"field": "model.dropout", "scale": "linear", "values": [0, 0.5, 1.5]}},
            "design.path.values",
            "1.5",
        ),
        ({"baseline": 3, "seeds": [1]}, "design.baseline", "1 configurations"),
        ({"seeds": list(range(30)), "folds": {"k": 20}}, "design", "600 members"),
    ],
)
def test_bad_designs_name_the_path_and_the_value(design: dict, field: str, words: str) -> None:
    base = dict(BASE)
    if design.get("learning_curve") == [1]:  # mnist validated on its official test split
        base = {"dataset": {"name": "mnist", "use_official_test": True}}
    base["epochs"] = design.pop("epochs", base.get("epochs", 3))
    with pytest.raises(Invalid) as caught:
        expand(base, Design.model_validate(design), max_members=500)
    assert caught.value.field == field and words in caught.value.message


@pytest.mark.parametrize(
    "design",
    [
        {"sweep": {"seed": [1, 2]}},
        {"sweep": {"dataset.folds": [1]}},
        {"sweep": {"Model.Dropout": [1]}},
        {"sweep": {"model.dropout": []}},
        {"sweep": {"model.dropout": [0]}, "overrides": [{}]},
        {"learning_curve": [2.5]},
    ],
)
def test_designs_pydantic_refuses(design: dict) -> None:
    with pytest.raises(ValidationError):
        Design.model_validate(design)


@pytest.mark.parametrize(
    ("design", "loc", "words"),
    [
        ({"path": {"field": "regularization.l2", "values": [1e-4, 1e-3]}}, "values", "3 to 50"),
        ({"path": {"field": "regularization.l2", "values": [1e-3] * 51}}, "values", "3 to 50"),
        ({"path": {"field": "regularization.l2", "values": [0, 1, 2]}}, "values", "positive"),
        ({"path": {"field": "regularization.l2", "start": -1, "stop": 1, "count": 3}}, "start", ""),
        (
            {
                "path": {
                    "field": "model.dropout",
                    "scale": "linear",
                    "start": 0,
                    "stop": 1,
                    "count": 2,
                }
            },
            "count",
            "",
        ),
        ({"path": {"field": "seed", "values": [1, 2, 3]}}, "field", "set by the study"),
        ({"path": {"field": "model.dropout", "values": [1, 2, 3]}, "sweep": {}}, "", "path"),
        ({"learning_curve": {"budget": "epochs"}}, "sizes", "required"),
        ({"learning_curve": [0.5], "sweep": {"dataset.train_subset": [9]}}, "", "set by"),
    ],
)
def test_paths_and_budgets_pydantic_refuses_naming_the_field(
    design: dict, loc: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Design.model_validate(design)
    error = caught.value.errors()[0]
    assert loc in ".".join(str(p) for p in error["loc"]) and words in error["msg"]


def test_a_step_budget_gives_each_size_the_largest_sizes_steps() -> None:
    """1437 training examples in batches of 64: 23 steps an epoch, 69 in 3 epochs; a quarter
    (359 examples, 6 steps an epoch) trains ceil(69 / 6) = 12 epochs (72 steps)."""
    for budget, epochs in (("steps", [12, 3]), ("epochs", [3, 3]), ("early_stop", [12, 3])):
        design = Design.model_validate({"learning_curve": {"sizes": [0.25, 1.0], "budget": budget}})
        out = expand(BASE, design, max_members=500)
        assert [m.spec.epochs for m in out.members] == epochs
        stopping = [m.spec.early_stopping for m in out.members]
        assert all(s is not None and s.patience == 10 for s in stopping) == (budget == "early_stop")
    small = out.members[0].spec
    assert small.histograms.every == 4 and small.evaluation.batch_points == 3  # 10 / 4, up


def test_a_path_over_a_log_grid_makes_one_configuration_a_value() -> None:
    design = Design.model_validate(
        {"path": {"field": "regularization.l2", "start": 1e-4, "stop": 1e-2, "count": 3}}
    )
    out = expand(BASE, design, max_members=500)
    values = [c["regularization.l2"] for c in out.configs]
    assert values == pytest.approx([1e-4, 1e-3, 1e-2])
    assert [m.spec.regularization.l2 for m in out.members] == pytest.approx(values)
    linear = Design.model_validate(
        {"path": {"field": "model.dropout", "scale": "linear", "values": [0.5, 0, 0.25]}}
    )
    assert [c["model.dropout"] for c in expand(BASE, linear, 500).configs] == [0, 0.25, 0.5]


def test_the_example_studies_expand() -> None:
    import json
    from pathlib import Path

    from api.studies.design import StudyCreate

    folder = Path(__file__).resolve().parents[2] / "examples" / "studies"
    sizes = {}
    for path in sorted(folder.glob("*.json")):
        body = StudyCreate.model_validate(json.loads(path.read_text()))
        sizes[path.stem] = len(expand(body.spec, body.design, max_members=500).members)
    assert sizes == {
        "digits_learning_curve": 25,  # 5 sizes x 5 folds
        "seed001_comparison": 30,  # 6 fixes x 5 folds
        "seed004_dropout_x_weight_decay": 27,  # 3 x 3 x 3 seeds
    }

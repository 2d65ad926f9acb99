"""The layout the code keeps (issue 11): one package per domain in api/, dependencies between
them running one way, every module short enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "trainer", "worker", "stack", "fitlens")
DOMAINS = (
    "core",
    "people",
    "runs",
    "metrics",
    "histograms",
    "evaluation",
    "diagnosis",
    "webhooks",
    "studies",
    "streams",
    "mlflow",
    "imports",
    "dashboard",
)

# What each api domain may import from the others: core under everything; people under runs;
# runs under the domains that keep a run's data; metrics under the diagnosis made of them.
# Views of those domains ask people only who is asking (api.people.deps). The two ways back, to
# a table only: authenticating a worker token reads its run's status in the same query
# (api.people.tokens -> api.runs.models); a run carries its diagnosis, and runs are listed,
# filtered and sorted by it (api.runs -> api.diagnosis.models).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "people": {"api.core", "api.runs.models"},
    "runs": {"api.core", "api.people", "api.diagnosis.models"},
    "metrics": {"api.core", "api.runs", "api.people.deps"},
    "histograms": {"api.core", "api.runs", "api.people.deps"},
    "evaluation": {"api.core", "api.runs", "api.people.deps"},
    "weights": {"api.core", "api.runs", "api.people.deps"},
    "checkpoints": {"api.core", "api.runs", "api.people"},
    "diagnosis": {"api.core", "api.runs", "api.metrics", "api.evaluation", "api.people.deps"},
    # Webhooks hear of runs (their status, diagnosis) and ask people who owns a team.
    "webhooks": {"api.core", "api.runs", "api.people", "api.diagnosis.models"},
    "studies": {
        "api.core",
        "api.runs",
        "api.metrics",
        "api.diagnosis.models",
        "api.histograms.models",  # a path reads the weights at the last histogram
        "api.people",
    },
    # Streams read every domain's tables (they tell of all of a run's data) and write none.
    "streams": {
        "api.core",
        "api.people",
        "api.runs",
        "api.metrics.models",
        "api.metrics.points",  # a series' rows are packed: read through their codec
        "api.metrics.blocks",
        "api.histograms.models",
        "api.evaluation.models",
        "api.diagnosis.models",
        "api.studies",
    },
    # MLflow's protocol: experiments are projects, its runs client runs with their points.
    "mlflow": {"api.core", "api.people", "api.runs", "api.metrics"},
    # An uploaded TensorBoard file: a client run written through its data's stores.
    "imports": {"api.core", "api.people", "api.runs", "api.metrics", "api.histograms"},
    # The pages only serve files; what they show comes from the API over HTTP.
    "dashboard": {"api.core"},
}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path, top_level: bool = False) -> set[str]:
    """Every module ``path`` imports (``top_level``: only those its module body imports,
    not a function's own late import)."""
    found = set()
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if not top_level else _module_level(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _module_level(tree: ast.Module) -> list[ast.AST]:
    """The module body's statements, and those inside its if and try blocks."""
    out: list[ast.AST] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If | ast.Try):
            todo.extend([*node.body, *node.orelse, *getattr(node, "finalbody", [])])
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_400_lines(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules(package)
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long


@pytest.mark.parametrize("domain", DOMAINS)
def test_domains_depend_one_way(domain: str) -> None:
    allowed = ALLOWED[domain] | {f"api.{domain}"}
    wrong = {}
    for path in _modules(f"api/{domain}"):
        outside = {
            m
            for m in _imports(path)
            if m.startswith("api.") and not any(m == a or m.startswith(a + ".") for a in allowed)
        }
        if outside:
            wrong[str(path.relative_to(ROOT))] = sorted(outside)
    assert not wrong


def test_stores_are_composed_not_inherited_across_domains() -> None:
    """A domain's store subclasses only its own domain's classes (and api.core's base), and
    calls another store's public methods only: ``self.<part>._private(...)`` is refused."""
    inherited: dict[str, list[str]] = {}
    private: dict[str, list[str]] = {}
    for domain in DOMAINS:
        for path in _modules(f"api/{domain}"):
            tree = ast.parse(path.read_text())
            names = {
                alias.asname or alias.name: node.module
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module
                for alias in node.names
            }
            where = str(path.relative_to(ROOT))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                    outside = [
                        b
                        for b in bases
                        if (names.get(b) or "").startswith("api.")
                        and not (names.get(b) or "").startswith((f"api.{domain}", "api.core"))
                    ]
                    if outside:
                        inherited[f"{where}:{node.name}"] = outside
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Attribute)
                    and isinstance(node.value.value, ast.Name)
                    and node.value.value.id == "self"
                ):
                    private.setdefault(where, []).append(f"self.{node.value.attr}.{node.attr}")
    assert not inherited
    assert not private


def test_trainer_and_worker_keep_their_doors() -> None:
    """trainer imports no web or queue code; worker and stack never import the API."""
    for package, banned in (
        ("trainer", ("api", "worker", "fastapi", "celery", "httpx", "sqlalchemy")),
        ("worker", ("api",)),
        ("stack", ("api", "worker", "trainer")),
        # The client (a distribution of its own) talks to the API over HTTP only, and needs
        # none of the server's packages; torch only below (a model is read through its own
        # methods).
        ("fitlens", ("api", "worker", "stack", "trainer", "celery", "fastapi", "sqlalchemy")),
    ):
        for path in _modules(package):
            bad = {m for m in _imports(path) if m.split(".")[0] in banned}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
    # Only a method that hands back torch objects (run.load_state_dict) may import torch, in
    # its body: a torch user calls it; importing fitlens never needs torch.
    for path in _modules("fitlens"):
        assert "torch" not in {m.split(".")[0] for m in _imports(path, top_level=True)}


def test_the_client_imports_light() -> None:
    """``import fitlens`` loads neither torch nor the server, nor pandas until a read needs it."""
    import subprocess
    import sys

    heavy = "('torch', 'pandas', 'api', 'celery', 'fastapi')"
    code = f"import sys, fitlens, fitlens.cli; print(sorted(set({heavy}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_table_of_run_data_is_found() -> None:
    """Deleting a run empties every table with a run_id column, and a retry clears one
    attempt's data, whichever domain keeps it (api.runs.lifecycle.run_tables)."""
    import api.models  # noqa: F401 - every domain's tables
    from api.runs.lifecycle import run_tables

    assert {t.name for t in run_tables()} == {
        "api_token",
        "histogram",
        "metric_block",
        "metric_series",
        "run_diagnosis",
        "run_evaluation",
        "run_event",
        "runtag",
        "webhook_delivery",
        "weight_snapshot",
        "run_checkpoint",
        "mlflow_tag",
    }
    assert {t.name for t in run_tables(attempt_data_only=True)} == {
        "histogram",
        "metric_block",
        "metric_series",
        "run_diagnosis",
        "run_evaluation",
        "weight_snapshot",
        "run_checkpoint",
    }

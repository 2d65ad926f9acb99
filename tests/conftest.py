"""How the suite is shared out between pytest-xdist's workers (``./scripts/test.sh`` runs
``-n 4 --dist loadgroup``; see README "Tests").

Each test file is one unit of work, so a module's servers and workers start once, on one
worker. The fault tests and the demo's start their own servers per test, so each is a unit of
its own and they run beside the rest. Units are handed out longest first (the order below, from
``--durations``), so that no long one starts last; the order changes the wall time only,
never what runs or what it asserts. Each worker has its own Redis database
(tests/e2e/conftest.py), PostgreSQL databases (tests/api/conftest.py), ports and temporary
folders."""

from __future__ import annotations

import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Four workers share two cores: a torch (OpenMP) pool per process would spin-wait for cores
    # the others hold (test_training took 29x longer). One thread each, set before torch loads;
    # subprocesses (the trainer's CLI, servers, workers) inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Files whose tests each start everything they use (the fault tests, the demo's), or share only
# what every worker builds when it imports them (the fuzz's apps): one unit per test.
PER_TEST = ("tests/e2e/test_faults.py", "tests/e2e/test_demo.py", "tests/api/test_fuzz.py")
# The longest units first (seconds on a quiet 2-core machine, run one at a time); the rest
# follow in collection order.
LONGEST_FIRST = (
    "tests/e2e/test_faults.py",  # 45 s, 20 s, 20 s, 7 s, 2 s
    "tests/e2e/test_demo.py",  # 25 s, 25 s
    "tests/e2e/test_pipeline.py",  # 50 s
    "tests/e2e/test_studies.py",  # 35 s
    "tests/browser/test_dashboard.py",  # 25 s
    "tests/e2e/test_client.py",  # 25 s
    "tests/test_bench.py",  # 35 s in ten short tests
    "tests/e2e/test_streams.py",  # 20 s
    "tests/api/test_auth.py",  # 15 s
)


def _unit(item: pytest.Item) -> str:
    path = item.nodeid.split("::", 1)[0]
    return item.nodeid if path in PER_TEST else path


def _rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def _name_each_item(items: list[pytest.Item]) -> None:
    """schemathesis names an item per API operation ("test[GET /api/v1/runs]") but gives them
    all the function's node id; xdist's schedulers hand out work by node id, and would run one
    of the 49 and report the fuzz as passed. Each item's id ends with its own name."""
    for item in items:
        base, bracket, params = item.name.partition("[")
        if bracket and item.nodeid.rpartition("::")[2] == base:  # pytest 9 dropped the params
            item._id = item.id.with_params(params.removesuffix("]"))
    ids = [item.nodeid for item in items]
    if len(set(ids)) != len(ids):
        raise pytest.UsageError(
            f"tests share a node id: {sorted(i for i in ids if ids.count(i) > 1)[:3]}"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _name_each_item(items)
    items.sort(key=_rank)  # stable: collection order within a rank
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(_unit(item)))

"""Real headless Chromium (Debian's, driven by Playwright; no browser download) against a real
API with runs trained by a real worker. Screenshots land in .artifacts/dashboard/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.browser import chromium
from tests.e2e.conftest import api, pipeline_env, worker  # noqa: F401 - the same real parts

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "dashboard"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as context:
        yield context

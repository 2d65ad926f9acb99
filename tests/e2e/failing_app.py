"""The real app with one route that fails, for tests/e2e/test_door.py (uvicorn --factory)."""

from __future__ import annotations

from fastapi import FastAPI

from api.main import create_app


def make() -> FastAPI:
    app = create_app()

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    return app

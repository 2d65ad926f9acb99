"""The dashboard: static pages served by the API itself at ``/`` (no second server).

The pages are plain ES modules (``static/``) drawing with ECharts, which ``scripts/setup.sh``
installs from npm (``npm ci`` here); nothing is fetched from a CDN at run time. What the pages
show they read from the API with the browser's session cookie (api.people.session).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles

from api.core.assets import ECHARTS, NO_ECHARTS

STATIC = Path(__file__).resolve().parent / "static"
# Scripts and data only from this server; ECharts sets inline styles on the elements it makes.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> Response:
    return FileResponse(STATIC / "index.html", headers=HEADERS)


@router.get("/ui/vendor/echarts.min.js")
async def echarts() -> Response:
    if not ECHARTS.exists():
        return PlainTextResponse(NO_ECHARTS, status_code=503)
    return FileResponse(ECHARTS, media_type="text/javascript", headers=HEADERS)


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")

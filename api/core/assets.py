"""Files the API serves or inlines: the charting library (installed by scripts/setup.sh from
npm, never a CDN) and the dashboard's figure builders, which a study report inlines."""

from __future__ import annotations

from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"
ECHARTS = DASHBOARD / "node_modules" / "echarts" / "dist" / "echarts.min.js"
FIGURES = DASHBOARD / "static" / "figures.js"
NO_ECHARTS = "ECharts is not installed: run ./scripts/setup.sh (npm ci in api/dashboard)"

"""A study as one self-contained HTML file that opens offline (``GET /studies/{id}/report.html``):
the question, the comparison table, the effects with their intervals, the bands, the learning
curve or the regularization path, and the verdicts. Its numbers are the API's own answers
(/table, /effects, /curves, /learning_curve, /path), embedded as JSON; ECharts and the
dashboard's figure builders (api/dashboard/static/figures.js) are inlined to draw them.
"""

from __future__ import annotations

import functools
import html
import json
import re
from datetime import datetime
from typing import Any

from api.core.assets import ECHARTS, FIGURES
from api.studies.answers import StudyAnswers
from api.studies.schemas import StudyEffects, StudyOut, StudyTable

REPORT_JS = FIGURES.with_name("report.js")
TABLE_VALUES = (
    ("min val loss", "min_val_loss"),
    ("val accuracy", "val_accuracy"),
    ("final gap", "final_gap"),
    ("onset epoch", "onset_epoch"),
)
EFFECTS = ("min_val_loss", "final_gap", "val_accuracy")
CURVE_KEYS = ("val_loss", "train_loss", "gap")
STYLE = """body{font:14px system-ui,sans-serif;color:#1d2330;max-width:1200px;margin:1.5rem auto;
padding:0 1rem}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}table{border-collapse:
collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e6ec}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#6b7385}
.yes{color:#c0392b;font-weight:600}.chart{width:100%;height:360px}.grid{display:grid;
grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1rem}"""


def study_report(store: StudyAnswers, study_id: int, now: datetime) -> str:
    """The report's HTML (the caller checks that ECharts is installed)."""
    study = store.get_study(study_id)
    table = store.study_table(study_id)
    effects = store.study_effects(study_id, None)
    curves = store.study_curves(study_id, CURVE_KEYS, 500)
    # As the API answers them (NaN and infinities as strings), not Python's view of them.
    data: dict[str, Any] = {
        "study": json.loads(study.model_dump_json()),
        "table": json.loads(table.model_dump_json()),
        "effects": json.loads(effects.model_dump_json()),
        "curves": json.loads(curves.model_dump_json()),
        "learning_curve": None,
        "path": None,
    }
    if study.design.get("learning_curve"):
        data["learning_curve"] = json.loads(store.learning_curve(study_id).model_dump_json())
    if study.design.get("path"):
        data["path"] = json.loads(store.regularization_path(study_id).model_dump_json())
    sections = [
        _question(study, now),
        _table(table),
        _effects(effects),
        '<h2>Mean ± std over the members</h2><div class="grid" id="bands"></div>',
    ]
    if data["learning_curve"]:
        sections.append(
            '<h2>Learning curve</h2><div class="grid"><div class="chart" id="learning-'
            'min_val_loss"></div><div class="chart" id="learning-final_gap"></div></div>'
        )
    if data["path"]:
        path = data["path"]
        sections.append(
            f"<h2>Regularization path</h2><p>λ_min {_e(path['lambda_min'])}, λ_1se "
            f"{_e(path['lambda_1se'])} ({_e(path['method'])})</p>"
            '<div class="chart" id="path"></div>'
        )
    title = f"Study #{study.id} {study.name}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}'
        f"</title><style>{STYLE}</style></head><body><h1>{_e(title)}</h1>{''.join(sections)}"
        f'<script type="application/json" id="fitlens-data">{_json(data)}</script>'
        f"<script>{_echarts()}</script><script>{_scripts()}</script></body></html>"
    )


def _question(study: StudyOut, now: datetime) -> str:
    varied = ", ".join(study.varied) or "nothing (replicates only)"
    status = ", ".join(f"{n} {s}" for s, n in sorted(study.status.items()))
    notes = f"<p>{_e(study.notes)}</p>" if study.notes else ""
    return (
        f"<p><b>What changes:</b> {_e(varied)}; baseline: "
        f"{_e(study.configs[study.baseline].name)}. {study.members} members ({_e(status)}), "
        f"project {_e(study.project)}, by {_e(study.created_by or '–')}, "
        f"{study.created_at:%Y-%m-%d %H:%M} UTC.</p>{notes}"
        f'<p class="muted">Report made {now:%Y-%m-%d %H:%M} UTC from the API\'s answers.</p>'
    )


def _table(table: StudyTable) -> str:
    head = "".join(f'<th class="num">{label}</th>' for label, _ in TABLE_VALUES)
    rows = []
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{_stat(row.values.get(key))}</td>' for _, key in TABLE_VALUES
        )
        verdicts = ", ".join(f"{n} {v}" for v, n in row.verdicts.items()) or "–"
        rows.append(
            f"<tr><td>{_e(row.name)}</td><td>{row.members}</td>{cells}<td>{_e(verdicts)}</td></tr>"
        )
    return (
        '<h2>Comparison (mean ± std over the members)</h2><table id="table"><tr><th>'
        f"configuration</th><th>members</th>{head}<th>verdicts</th></tr>{''.join(rows)}</table>"
    )


def _effects(effects: StudyEffects) -> str:
    rows = []
    for config in effects.configs:
        if config.config == effects.baseline:
            continue
        for name in EFFECTS:
            e = config.effects.get(name)
            if e is None:
                continue
            rows.append(
                f'<tr><td>{_e(config.name)}</td><td>{name}</td><td class="num">'
                f'{_num(e.mean, True)}</td><td class="num">[{_num(e.ci_low, True)}, '
                f'{_num(e.ci_high, True)}]</td><td class="num">{_num(e.p_holm)}</td>'
                f'<td class="{"yes" if e.detectable else ""}">'
                f"{'yes' if e.detectable else 'no'}</td></tr>"
            )
    charts = "".join(f'<div class="chart" id="forest-{n}"></div>' for n in EFFECTS)
    return (
        f'<h2>Effects against {_e(effects.baseline_name)}</h2><p class="muted">'
        f'{_e(effects.ci_method)}; {_e(effects.adjustment)}</p><table id="effects"><tr><th>'
        'configuration</th><th>value</th><th class="num">effect</th><th class="num">95% '
        'interval</th><th class="num">p (Holm)</th><th>detectable</th></tr>'
        f'{"".join(rows)}</table><div class="grid">{charts}</div>'
    )


def _stat(stat: Any) -> str:
    if stat is None or stat.mean is None:
        return "–"
    return f"{_num(stat.mean)} ± {_num(stat.std)}"


def _num(value: float | None, sign: bool = False) -> str:
    """As the dashboard writes numbers: 4 significant decimals, integers as they are."""
    if value is None:
        return "–"
    if float(value).is_integer() and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = f"{value:.4f}"
    return f"+{text}" if sign and value >= 0 else text


def _e(value: Any) -> str:
    return html.escape(str(value) if value is not None else "–")


def _json(data: Any) -> str:
    # Inside <script>: no "</script>" or "<!--" can end it, whatever a name holds.
    return json.dumps(data, allow_nan=False, default=str).replace("<", "\\u003c")


@functools.cache
def _echarts() -> str:
    return ECHARTS.read_text(encoding="utf-8").replace("</script", "<\\/script")


@functools.cache
def _scripts() -> str:
    """figures.js as a classic script (its exports dropped), then the report's own."""
    figures = re.sub(
        r"^export (?=(async )?function|const|let)", "", FIGURES.read_text(), flags=re.M
    )
    return f"{figures}\n{REPORT_JS.read_text()}"

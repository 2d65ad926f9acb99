"""Studies: one POST makes every member run; the reads answer the study's question (bands,
the comparison table, effects against the baseline, the learning curve), all with ETags."""

from __future__ import annotations

import csv
import io
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import ValidationError

from api.core.assets import ECHARTS, NO_ECHARTS
from api.core.db import utcnow
from api.core.deps import (
    MAX_ID,
    AnswersDep,
    RunId,
    SettingsDep,
    conditional_answer,
    csv_list,
    etag,
    not_modified,
)
from api.core.exceptions import Invalid
from api.core.http import GuardedRoute, before_body
from api.people.deps import UserDep
from api.runs.budget import check_budget
from api.runs.delivery import deliver, hand_over
from api.runs.deps import EnqueuerDep, LifecycleDep, RunWrite
from api.runs.guard import run_role
from api.studies.deps import StudiesDep, StudyId, StudyRead, StudyWrite
from api.studies.design import StudyCreate, expand
from api.studies.fixes import FixStudyCreate, fix_study
from api.studies.reads import SUMMARIES
from api.studies.report import study_report
from api.studies.schemas import (
    FixStudyOut,
    LearningCurve,
    RegularizationPath,
    StudyCurves,
    StudyEffects,
    StudyOut,
    StudyPage,
    StudyTable,
    Winner,
)
from trainer.spec import JobSpec

TAGS: list[str | Enum] = ["studies"]
router = APIRouter(route_class=GuardedRoute, tags=TAGS)


@router.post("/studies", status_code=201, response_model=StudyOut)
def create_study(
    body: StudyCreate,
    store: StudiesDep,
    lifecycle: LifecycleDep,
    enqueuer: EnqueuerDep,
    settings: SettingsDep,
    response: Response,
    principal: UserDep,
) -> StudyOut:
    """A base spec and a design (sweep, overrides or a path; seeds, folds, learning-curve
    sizes): every member is validated as a whole spec, stored with the study, and handed to
    the queue."""
    try:
        JobSpec.model_validate(body.spec)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(["spec", *(str(p) for p in error["loc"])])
        raise Invalid(where, error["msg"]) from None
    return _start(body, store, lifecycle, enqueuer, settings, response, principal, None)


@router.post("/runs/{run_id}/fix_study", status_code=201, response_model=FixStudyOut)
@before_body(run_role("write"))
def create_fix_study(
    run_id: RunId,
    body: FixStudyCreate,
    store: StudiesDep,
    lifecycle: LifecycleDep,
    enqueuer: EnqueuerDep,
    settings: SettingsDep,
    response: Response,
    principal: UserDep,
    _: RunWrite,
) -> FixStudyOut:
    """A study of the usual fixes around the run's own spec, with k folds: the run itself
    (the baseline), dropout, L1, L2, weight decay, ReduceLROnPlateau, early stopping, twice
    the training data and augmentation where they apply, and a random-label control (409 for
    a run logged from its own loop: it has no spec)."""
    spec_json, run_name, project_id = store.run_to_fix(run_id)
    study_body, skipped = fix_study(spec_json, run_name, body)
    study = _start(
        study_body, store, lifecycle, enqueuer, settings, response, principal, project_id
    )
    return FixStudyOut(**study.model_dump(), skipped=skipped)


def _start(
    body: StudyCreate,
    store: StudiesDep,
    lifecycle: LifecycleDep,
    enqueuer: EnqueuerDep,
    settings: SettingsDep,
    response: Response,
    principal: UserDep,
    project_id: int | None,
) -> StudyOut:
    expansion = expand(body.spec, body.design, settings.max_study_members)
    for member in expansion.members:
        check_budget(member.spec, settings)
    study, handed = store.create_study(
        body, expansion, principal, settings.max_team_storage_mb, project_id
    )
    for run_id, spec, token in handed:  # committed first: a broker away only delays them
        hand_over(lifecycle, enqueuer, run_id, spec, token)
    response.headers["Location"] = f"{settings.api_prefix}/studies/{study.id}"
    return study


@router.get("/studies", response_model=StudyPage)
def list_studies(
    store: StudiesDep,
    principal: UserDep,
    project: str | None = None,
    name: Annotated[str | None, Query(description="case-insensitive substring")] = None,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="the page's next_before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> StudyPage:
    """The studies of the caller's teams, newest first: members per status and the best
    configuration so far (lowest mean minimum validation loss)."""
    return store.list_studies(principal, project, name, before, limit)


@router.get("/studies/{study_id}", response_model=StudyOut, responses={304: {}})
async def get_study(
    study_id: StudyId, request: Request, store: StudiesDep, answers: AnswersDep, grant: StudyRead
) -> StudyOut | Response:
    """The study: its design, configurations, what varies, and its members per status (its
    members themselves: GET /runs?study={id})."""
    return await conditional_answer(
        request, answers, grant.identity, grant.revision, lambda: store.get_study(study_id)
    )


@router.post("/studies/{study_id}/cancel", response_model=StudyOut)
def cancel_study(study_id: StudyId, store: StudiesDep, _: StudyWrite) -> StudyOut:
    """Cancel every member still queued or running."""
    return store.cancel_study(study_id)


@router.post("/studies/{study_id}/retry", response_model=StudyOut)
def retry_study(
    study_id: StudyId,
    store: StudiesDep,
    lifecycle: LifecycleDep,
    enqueuer: EnqueuerDep,
    settings: SettingsDep,
    principal: UserDep,
    _: StudyWrite,
) -> StudyOut:
    """Every failed or cancelled member goes back to the queue as a new attempt."""
    for run_id in store.retry_study(study_id, principal.user_name or "?"):
        deliver(lifecycle, enqueuer, run_id, settings.redeliver_after)
    return store.get_study(study_id)


@router.get("/studies/{study_id}/curves", response_model=StudyCurves, responses={304: {}})
async def study_curves(
    study_id: StudyId,
    request: Request,
    store: StudiesDep,
    answers: AnswersDep,
    grant: StudyRead,
    keys: Annotated[
        str | None, Query(description="comma-separated metric keys; default: every key")
    ] = None,
    max_points: Annotated[int, Query(ge=2, le=100_000)] = 10_000,
) -> StudyCurves | Response:
    """Per configuration and metric (every one the members logged, or ``keys``): steps with the
    mean, std, min, max and n over its members."""
    key_list = csv_list(keys, "keys", limit=50)
    return await conditional_answer(
        request,
        answers,
        grant.identity,
        grant.revision,
        lambda: store.study_curves(study_id, key_list, max_points).model_copy(
            update={"revision": grant.revision}
        ),
    )


SortQuery = Annotated[
    str | None,
    Query(
        description=f"config or a summary value ({', '.join(SUMMARIES)}), by its mean; '-' "
        "for descending"
    ),
]


@router.get("/studies/{study_id}/table", response_model=StudyTable, responses={304: {}})
async def study_table(
    study_id: StudyId,
    request: Request,
    store: StudiesDep,
    answers: AnswersDep,
    grant: StudyRead,
    sort: SortQuery = None,
) -> StudyTable | Response:
    """One row per configuration: the varied values, members per status and verdict, and every
    summary value (the members' diagnoses) as mean, std, min, max and n."""
    return await conditional_answer(
        request, answers, grant.identity, grant.revision, lambda: store.study_table(study_id, sort)
    )


@router.get(
    "/studies/{study_id}/table.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, 304: {}},
)
def study_table_csv(
    study_id: StudyId, request: Request, store: StudiesDep, grant: StudyRead, sort: SortQuery = None
) -> Response:
    """The table as CSV: config, each varied path, members, then mean and std of every
    summary value, then the verdict counts (not an answer kept as JSON: its own ETag check)."""
    tag = etag(request, grant.identity, grant.revision)
    if (cached := not_modified(request, tag)) is not None:
        return cached
    table = store.study_table(study_id, sort)
    verdicts = sorted({v for row in table.rows for v in row.verdicts})
    out = io.StringIO()
    writer = csv.writer(out)
    parts = ("mean", "std", "n")
    stats = [f"{name}_{part}" for name in table.summaries for part in parts]
    writer.writerow(["config", "name", *table.varied, "members", *stats, *verdicts])
    for row in table.rows:
        values = [
            getattr(row.values[name], part)
            for name in table.summaries
            for part in ("mean", "std", "n")
        ]
        writer.writerow(
            [
                row.config,
                row.name or "",
                *(row.overrides.get(path) for path in table.varied),
                row.members,
                *("" if v is None else v for v in values),
                *(row.verdicts.get(v, 0) for v in verdicts),
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={
            "ETag": tag,
            "Content-Disposition": f'attachment; filename="study-{study_id}.csv"',
        },
    )


@router.get("/studies/{study_id}/winner", response_model=Winner, responses={304: {}})
async def study_winner(
    study_id: StudyId,
    request: Request,
    store: StudiesDep,
    answers: AnswersDep,
    grant: StudyRead,
    by: Annotated[str, Query(max_length=40, description="a summary value")] = "val_accuracy",
) -> Winner | Response:
    """The configuration validation picks (the best mean ``by``), and its optimism: its
    validation accuracy minus its test accuracy (with ``dataset.test_fraction``), per member
    and as a mean with a 95% interval over the folds or seeds."""
    return await conditional_answer(
        request, answers, grant.identity, grant.revision, lambda: store.winner(study_id, by)
    )


@router.get("/studies/{study_id}/effects", response_model=StudyEffects, responses={304: {}})
async def study_effects(
    study_id: StudyId,
    request: Request,
    store: StudiesDep,
    answers: AnswersDep,
    grant: StudyRead,
    baseline: Annotated[
        int | None, Query(ge=0, le=100_000, description="default: the study's baseline")
    ] = None,
) -> StudyEffects | Response:
    """Each configuration against the baseline: per summary value, the mean paired difference
    over matching folds and seeds with its 95% confidence interval, and whether it is
    detectable (the interval excludes zero)."""
    return await conditional_answer(
        request,
        answers,
        grant.identity,
        grant.revision,
        lambda: store.study_effects(study_id, baseline),
    )


@router.get("/studies/{study_id}/learning_curve", response_model=LearningCurve, responses={304: {}})
async def learning_curve(
    study_id: StudyId,
    request: Request,
    store: StudiesDep,
    answers: AnswersDep,
    grant: StudyRead,
    x: Annotated[
        float | None,
        Query(gt=0, le=1e6, description="a gap: about how many examples bring it under x"),
    ] = None,
) -> LearningCurve | Response:
    """Per training-set size: final and best train and validation loss and accuracy, mean and
    std over the folds or seeds, and the steps trained; power laws of min_val_loss and
    final_gap against the training examples, and, with ``x``, about how many examples bring
    the gap under x (422 for a study without design.learning_curve)."""
    return await conditional_answer(
        request,
        answers,
        grant.identity,
        grant.revision,
        lambda: store.learning_curve(study_id, x),
    )


REPORT_HEADERS = {
    # A file to keep and send: saved, not shown on the API's origin; it needs no network.
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@router.get(
    "/studies/{study_id}/report.html",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, 503: {}},
)
def study_report_html(study_id: StudyId, store: StudiesDep, _: StudyRead) -> Response:
    """The study as one self-contained HTML file that opens offline (data and ECharts
    inlined): the question, the table, the effects with intervals, the bands, the learning
    curve or path, and the verdicts, with the numbers of /table and /effects."""
    if not ECHARTS.exists():
        return PlainTextResponse(NO_ECHARTS, status_code=503)
    page = study_report(store, study_id, utcnow())
    disposition = f'attachment; filename="fitlens-study-{study_id}.html"'
    return HTMLResponse(page, headers={**REPORT_HEADERS, "Content-Disposition": disposition})


@router.get("/studies/{study_id}/path", response_model=RegularizationPath, responses={304: {}})
async def regularization_path(
    study_id: StudyId,
    request: Request,
    store: StudiesDep,
    answers: AnswersDep,
    grant: StudyRead,
) -> RegularizationPath | Response:
    """Per value of design.path: min_val_loss, final_gap, onset_epoch and the weights' L2 norm
    and near-zero share (last histograms), mean and std over the folds or seeds; lambda_min
    and lambda_1se (422 for a study without design.path)."""
    return await conditional_answer(
        request,
        answers,
        grant.identity,
        grant.revision,
        lambda: store.regularization_path(study_id),
    )

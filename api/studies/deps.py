"""Who may do what to the path's study, said in a route's signature (as api.runs.deps for
runs): outside the caller's teams a study is NotFound; worker tokens are refused (403)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path

from api.core.deps import MAX_ID, part
from api.people.deps import UserDep
from api.studies.answers import StudyAnswers
from api.studies.service import StudyGrant

StudyId = Annotated[int, Path(ge=1, le=MAX_ID)]
StudiesDep = Annotated[StudyAnswers, part("studies")]


def _grant(need: str) -> Any:
    async def grant(study_id: StudyId, studies: StudiesDep, principal: UserDep) -> StudyGrant:
        return studies.grant_study(principal, study_id, need)

    return Depends(grant)


StudyRead = Annotated[StudyGrant, _grant("read")]
StudyWrite = Annotated[StudyGrant, _grant("write")]

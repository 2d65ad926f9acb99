"""MLflow experiments as fitlens projects: an experiment's id is its project's id, and ``0``
(MLflow's default experiment) is the caller's default project. A caller sees the projects of
their teams only; any other id is RESOURCE_DOES_NOT_EXIST, like one that does not exist."""

from __future__ import annotations

from typing import Any

from api.core.exceptions import Invalid, NotFound
from api.mlflow.errors import MlflowError
from api.mlflow.pages import page_of
from api.mlflow.schemas import CreateExperiment, SearchExperiments
from api.mlflow.search import ordered, parse_filter, parse_order
from api.people.auth import Principal
from api.people.projects import ProjectStore

DEFAULT_EXPERIMENT = "0"
# On create_experiment, the team of the new project, for a caller who writes to several.
TEAM_TAG = "fitlens.team"


def experiment_json(project_id: int | str, name: str) -> dict[str, Any]:
    return {
        "experiment_id": str(project_id),
        "name": name,
        "artifact_location": f"mlflow-artifacts:/{project_id}",
        "lifecycle_stage": "active",
        "tags": [],
    }


def number_id(raw: str) -> int | None:
    """An id in MLflow's text, or None when it cannot be one of ours (so: not found)."""
    raw = raw.strip()
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 2**62:
        return int(raw)
    return None


class ExperimentStore:
    """Built with the projects' store: experiments are its projects."""

    def __init__(self, projects: ProjectStore) -> None:
        self.projects = projects

    def project_of(self, principal: Principal, experiment_id: str) -> tuple[int | None, str]:
        """The project an experiment id names, (id, name): (None, the default project's name)
        for ``0`` while that project does not exist yet (a run filed there makes it)."""
        if experiment_id.strip() in ("", DEFAULT_EXPERIMENT):
            name = self.projects.default_project
            found = self.projects.visible(principal, name=name)
            return (found[0][0], name) if len(found) == 1 else (None, name)
        project_id = number_id(experiment_id)
        found = self.projects.visible(principal, project_id=project_id) if project_id else []
        if not found:
            raise NotFound(f"No Experiment with id={experiment_id} exists")
        return found[0][0], found[0][1]

    def get(self, principal: Principal, experiment_id: str) -> dict[str, Any]:
        project_id, name = self.project_of(principal, experiment_id)
        return experiment_json(DEFAULT_EXPERIMENT if project_id is None else project_id, name)

    def get_by_name(self, principal: Principal, name: str) -> dict[str, Any]:
        found = self.projects.visible(principal, name=name)
        if not found:
            raise NotFound(f"Could not find experiment with name '{name}'")
        if len(found) > 1:
            raise Invalid("experiment_name", f"several of your teams have an experiment {name!r}")
        return experiment_json(found[0][0], found[0][1])

    def create(self, principal: Principal, body: CreateExperiment) -> str:
        team = None
        for tag in body.tags:
            if tag.key != TEAM_TAG:
                raise Invalid(
                    "tags",
                    f"fitlens keeps no experiment tags but {TEAM_TAG} (the team of a new "
                    f"experiment); {tag.key[:100]!r} was sent",
                )
            team = tag.value
        if self.projects.visible(principal, name=body.name):
            raise MlflowError(
                "RESOURCE_ALREADY_EXISTS", f"Experiment '{body.name}' already exists."
            )
        try:
            return str(self.projects.create_project(principal, body.name, team))
        except Invalid as exc:  # several writable teams: which one is the tag's to say
            raise Invalid(
                "tags", f"{exc.message}: create it with the tag {TEAM_TAG}=<team>"
            ) from None

    def search(
        self, principal: Principal, body: SearchExperiments
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The caller's experiments; the filter and order_by read ``name`` and
        ``experiment_id`` (attributes), by id when no order is asked for."""
        if body.view_type == "DELETED_ONLY":
            return [], None  # fitlens deletes nothing softly
        clauses = parse_filter(body.filter)
        views = [
            {
                "attributes": {"name": name, "experiment_id": project_id},
                "tags": {},
                "metrics": {},
                "params": {},
                "json": experiment_json(project_id, name),
            }
            for project_id, name, _ in self.projects.visible(principal)
        ]
        views = [v for v in views if all(c.holds(v) for c in clauses)]
        views = ordered(views, parse_order(body.order_by))
        page, token = page_of(views, body.max_results, body.page_token)
        return [v["json"] for v in page], token

"""The bodies MLflow's client sends, read the way its server reads them: fields it does not
know are ignored (clients of other versions send more), numbers may come as strings (protobuf's
JSON writes 64-bit integers so), and MLflow's own limits hold (mlflow.utils.validation).

Keys and values must also fit what a fitlens run stores: a metric key is a fitlens metric key
(letters, digits and ``_ . / : -``, at most 100 characters), a param a fitlens param."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

from api.core.schemas import Step, Text

# MLflow's limits (mlflow.utils.validation): what its own server refuses, fitlens refuses too.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
MAX_RESULTS = 50_000
# Milliseconds since the epoch, up to the year 9999.
Millis = Annotated[int, Field(ge=0, le=253_402_300_799_999)]


class MlflowIn(BaseModel):
    model_config = ConfigDict(extra="ignore")


MetricKey = Annotated[
    Text,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_./:-]+$",
        description="a fitlens metric key: letters, digits and _ . / : - (no spaces)",
    ),
]
Key = Annotated[Text, Field(min_length=1, max_length=MAX_KEY)]


class MetricIn(MlflowIn):
    key: MetricKey
    value: float  # NaN and +-Infinity as MLflow writes them ("NaN", "Infinity")
    timestamp: Millis
    step: Step = 0

    def as_dict(self) -> MetricDict:
        return {
            "key": self.key,
            "value": self.value,
            "timestamp": self.timestamp,
            "step": self.step,
        }


class ParamIn(MlflowIn):
    key: Key
    value: Annotated[Text, Field(max_length=MAX_PARAM_VALUE)]

    def as_dict(self) -> ParamDict:
        return {"key": self.key, "value": self.value}


class TagIn(MlflowIn):
    key: Key
    value: Annotated[Text, Field(max_length=MAX_TAG_VALUE)] = ""

    def as_dict(self) -> TagDict:
        return {"key": self.key, "value": self.value}


RunIdField = Annotated[Text, Field(default="", max_length=100)]


class RunRef(MlflowIn):
    """A run named by ``run_id`` or, as older clients do, ``run_uuid``."""

    run_id: RunIdField = ""
    run_uuid: RunIdField = ""

    @property
    def run(self) -> str:
        return self.run_id or self.run_uuid


class LogBatch(RunRef):
    metrics: list[MetricIn] = Field(default_factory=list, max_length=MAX_METRICS_PER_BATCH)
    params: list[ParamIn] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)
    tags: list[TagIn] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)


# log-batch's hot path validates with TypedDicts straight from the JSON bytes: the rules of
# LogBatch (which documents the body in OpenAPI), several times faster than building models.
ParamValue = Annotated[Text, Field(max_length=MAX_PARAM_VALUE)]
TagValue = Annotated[Text, Field(max_length=MAX_TAG_VALUE)]
RunIdText = Annotated[Text, Field(max_length=100)]


@with_config(ConfigDict(extra="ignore"))
class MetricDict(TypedDict):
    key: MetricKey
    value: float
    timestamp: Millis
    step: NotRequired[Step]


@with_config(ConfigDict(extra="ignore"))
class ParamDict(TypedDict):
    key: Key
    value: ParamValue


@with_config(ConfigDict(extra="ignore"))
class TagDict(TypedDict):
    key: Key
    value: NotRequired[TagValue]


@with_config(ConfigDict(extra="ignore"))
class LogBatchDict(TypedDict):
    run_id: NotRequired[RunIdText]
    run_uuid: NotRequired[RunIdText]
    metrics: NotRequired[Annotated[list[MetricDict], Field(max_length=MAX_METRICS_PER_BATCH)]]
    params: NotRequired[Annotated[list[ParamDict], Field(max_length=MAX_PARAMS_TAGS_PER_BATCH)]]
    tags: NotRequired[Annotated[list[TagDict], Field(max_length=MAX_PARAMS_TAGS_PER_BATCH)]]


LOG_BATCH = TypeAdapter(LogBatchDict)


class LogMetric(RunRef, MetricIn):
    pass


class LogParam(RunRef, ParamIn):
    pass


class SetTag(RunRef, TagIn):
    pass


class DeleteTag(RunRef):
    key: Key


MlflowStatus = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]


class CreateRun(MlflowIn):
    experiment_id: Annotated[Text, Field(max_length=30)] = "0"
    user_id: Annotated[Text, Field(max_length=200)] = ""
    start_time: Millis | None = None
    run_name: Annotated[Text, Field(max_length=200)] = ""
    tags: list[TagIn] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)


class UpdateRun(RunRef):
    status: MlflowStatus | None = None
    end_time: Millis | None = None
    run_name: Annotated[Text, Field(max_length=200)] | None = None


class CreateExperiment(MlflowIn):
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    artifact_location: Annotated[Text, Field(max_length=1000)] = ""
    tags: list[TagIn] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)


ViewType = Literal["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]
OrderBy = list[Annotated[Text, Field(max_length=300)]]


class SearchExperiments(MlflowIn):
    max_results: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = 1000
    page_token: Annotated[Text, Field(max_length=200)] = ""
    filter: Annotated[Text, Field(max_length=2000)] = ""
    order_by: OrderBy = Field(default_factory=list, max_length=10)
    view_type: ViewType = "ACTIVE_ONLY"


class SearchRuns(MlflowIn):
    experiment_ids: list[Annotated[Text, Field(max_length=30)]] = Field(
        default_factory=list, max_length=100
    )
    filter: Annotated[Text, Field(max_length=2000)] = ""
    run_view_type: ViewType = "ACTIVE_ONLY"
    max_results: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = 1000
    order_by: OrderBy = Field(default_factory=list, max_length=10)
    page_token: Annotated[Text, Field(max_length=200)] = ""

"""How big a job this server takes: a 422 before a worker would be handed more than it can
hold (FITLENS_MAX_MODEL_PARAMETERS, _DATA_ELEMENTS, _ACTIVATION_ELEMENTS)."""

from __future__ import annotations

from api.core.config import Settings
from api.core.exceptions import Invalid
from trainer.spec import JobSpec


def check_budget(spec: JobSpec, settings: Settings) -> None:
    """A 422 for a job bigger than this server lets one worker hold (FITLENS_MAX_*)."""
    needs = spec.resources()
    field = "spec.dataset.synthetic.n_samples" if spec.dataset.synthetic else "spec.dataset"
    for need, limit, what, where, setting in (
        (
            needs.parameters,
            settings.max_model_parameters,
            "parameters",
            "spec.model",
            "MODEL_PARAMETERS",
        ),
        (needs.data_elements, settings.max_data_elements, "data elements", field, "DATA_ELEMENTS"),
        (
            needs.activation_elements,
            settings.max_activation_elements,
            "activation elements",
            "spec.batch_size",
            "ACTIVATION_ELEMENTS",
        ),
    ):
        if need > limit:
            raise Invalid(
                where,
                f"the job needs {need:,} {what}; this server allows at most {limit:,} "
                f"(FITLENS_MAX_{setting})",
            )

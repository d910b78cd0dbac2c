"""The prediction store: the schema model services write and the drift job reads."""

from prediction_store.engine import (
    CONNECT_TIMEOUT_SECONDS,
    POSTGRES_CONNECTION_DEFAULTS,
    create_store_engine,
    normalise_url,
)
from prediction_store.migrate import current_revision, head_revision, upgrade
from prediction_store.queries import (
    DECISION_COLUMN,
    OUTCOME_COLUMN,
    OUTPUT_COLUMNS,
    SCORE_COLUMN,
    count_labelled,
    count_predictions,
    count_window,
    feature_columns,
    select_labelled,
    select_reference,
    select_window,
)
from prediction_store.registry import (
    FeatureKind,
    FeatureSpec,
    ModelRegistration,
    ReferenceOutput,
    RegisteredModel,
    get_model,
    register_model,
)
from prediction_store.schema import feedback, metadata, models, predictions, reference_rows

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DECISION_COLUMN",
    "OUTCOME_COLUMN",
    "OUTPUT_COLUMNS",
    "POSTGRES_CONNECTION_DEFAULTS",
    "SCORE_COLUMN",
    "FeatureKind",
    "FeatureSpec",
    "ModelRegistration",
    "ReferenceOutput",
    "RegisteredModel",
    "count_labelled",
    "count_predictions",
    "count_window",
    "create_store_engine",
    "current_revision",
    "feature_columns",
    "feedback",
    "get_model",
    "head_revision",
    "metadata",
    "models",
    "normalise_url",
    "predictions",
    "reference_rows",
    "register_model",
    "select_labelled",
    "select_reference",
    "select_window",
    "upgrade",
]

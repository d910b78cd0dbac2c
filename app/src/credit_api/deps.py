"""Request dependencies: the running service's parts, typed, or a 503 when not there yet.

They are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread pool,
and a thread hand-off per dependency would cost more than the whole prediction.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request, status

from credit_api.config import Settings
from credit_api.metrics import Metrics
from credit_api.model_loading import LoadedModel
from credit_api.prediction_log import PredictionLogWriter
from credit_api.runtime import Runtime
from credit_api.service import Predictor


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


async def get_metrics(runtime: RuntimeDep) -> Metrics:
    return runtime.metrics


def current_predictor(request: Request) -> Predictor:
    """The predictor, straight from the request (the prediction routes resolve no dependencies)."""
    runtime: Runtime = request.app.state.runtime
    if runtime.predictor is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the model is not loaded yet")
    return runtime.predictor


async def get_model(request: Request) -> LoadedModel:
    return current_predictor(request).model


async def get_store_engine(runtime: RuntimeDep) -> sa.Engine:
    if runtime.engine is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the prediction store is disabled")
    return runtime.engine


async def get_writer(runtime: RuntimeDep) -> PredictionLogWriter | None:
    return runtime.writer


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
StoreEngineDep = Annotated[sa.Engine, Depends(get_store_engine)]
WriterDep = Annotated[PredictionLogWriter | None, Depends(get_writer)]

"""POST /api/v1/feedback: the observed outcome of an earlier prediction."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, status

from credit_api.deps import MetricsDep, SettingsDep, StoreEngineDep, WriterDep
from credit_api.feedback import record_feedback
from credit_api.routes.json_route import GatedJSONRoute
from credit_api.schemas import (
    BODY_ERROR_RESPONSES,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
)

router = APIRouter(
    prefix="/api/v1",
    tags=["feedback"],
    route_class=GatedJSONRoute,
    responses={
        **BODY_ERROR_RESPONSES,
        404: {"model": ErrorResponse, "description": "No prediction has this request id."},
        503: {"model": ErrorResponse, "description": "The prediction store is unavailable."},
    },
)


@router.post("/feedback", summary="Record what actually happened to a scored application")
async def post_feedback(
    body: FeedbackRequest,
    engine: StoreEngineDep,
    writer: WriterDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> FeedbackResponse:
    """Store the outcome for later performance monitoring.

    A prediction made a moment ago may still be in the prediction log's queue: its batch is
    written first (waiting a bounded time), so feedback right after a prediction works.
    """
    if writer is not None and not writer.store_ready:
        metrics.errors.labels("store").inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the prediction store is not ready yet; retry later",
            headers={"Retry-After": "5"},
        )
    if writer is not None and writer.is_pending(body.request_id):
        timeout = settings.feedback_flush_timeout_seconds
        if not await asyncio.to_thread(writer.flush_record, body.request_id, timeout):
            metrics.errors.labels("store").inc()
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "the prediction is not stored yet (store unavailable); retry later",
                headers={"Retry-After": "5"},
            )
    try:
        recorded_at = await asyncio.to_thread(
            record_feedback, engine, body.request_id, body.outcome
        )
    except sa.exc.SQLAlchemyError as error:
        metrics.errors.labels("store").inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the prediction store is unavailable ({type(error).__name__})",
            headers={"Retry-After": "5"},
        ) from error
    if recorded_at is None and writer is not None and writer.spool_backlog:
        # The prediction may wait in the spool (the store was down): not known yet is not
        # unknown.
        metrics.errors.labels("store").inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the prediction is not stored yet (records from a store outage are being written);"
            " retry later",
            headers={"Retry-After": "5"},
        )
    if recorded_at is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no prediction {body.request_id!r}")
    return FeedbackResponse(
        request_id=body.request_id, outcome=body.outcome, recorded_at=recorded_at
    )

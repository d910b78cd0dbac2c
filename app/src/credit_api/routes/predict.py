"""POST /api/v1/predict and /api/v1/predict/batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from credit_api.deps import current_predictor
from credit_api.routes.json_route import ValidatedJSONRoute
from credit_api.schemas import (
    BODY_ERROR_RESPONSES,
    BatchPredictionRequest,
    BatchPredictionResponse,
    CreditApplication,
    ErrorResponse,
    Prediction,
    PredictionResponse,
    batch_request_model,
)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    **BODY_ERROR_RESPONSES,
    503: {"model": ErrorResponse, "description": "The model is not loaded yet."},
}


def create_router(max_batch_size: int) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1",
        tags=["predictions"],
        responses=ERROR_RESPONSES,
        route_class=ValidatedJSONRoute,
    )

    @router.post("/predict", summary="Score one credit application")
    async def predict(application: CreditApplication, request: Request) -> PredictionResponse:
        """The decision (good or bad credit) and the probability of default."""
        predictor = current_predictor(request)
        [result] = predictor.predict([application.model_dump()])
        return PredictionResponse(
            request_id=result.request_id,
            decision=result.decision,
            probability_of_default=result.probability_of_default,
            model=predictor.model.name,
            version=predictor.model.version,
        )

    async def predict_batch(
        body: BatchPredictionRequest, request: Request
    ) -> BatchPredictionResponse:
        """One prediction per application, in order, each with its own request id."""
        predictor = current_predictor(request)
        results = predictor.predict([application.model_dump() for application in body.applications])
        return BatchPredictionResponse(
            model=predictor.model.name,
            version=predictor.model.version,
            predictions=[
                Prediction(
                    request_id=r.request_id,
                    decision=r.decision,
                    probability_of_default=r.probability_of_default,
                )
                for r in results
            ],
        )

    # The body class carries the configured size limit (so OpenAPI shows it): built here.
    predict_batch.__annotations__["body"] = batch_request_model(max_batch_size)
    router.add_api_route(
        "/predict/batch",
        predict_batch,
        methods=["POST"],
        summary=f"Score up to {max_batch_size} credit applications at once",
    )
    return router

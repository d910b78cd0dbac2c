"""GET /api/v1/model: the model card."""

from __future__ import annotations

from fastapi import APIRouter

from credit_api.deps import ModelDep
from credit_api.schemas import FeatureInfo, ModelCard

router = APIRouter(prefix="/api/v1", tags=["model"])


@router.get("/model", summary="The model card: name, version, features and training metrics")
async def model_card(model: ModelDep) -> ModelCard:
    bundle = model.bundle
    return ModelCard(
        name=bundle.name,
        version=bundle.version,
        features=[
            FeatureInfo(
                name=spec.name,
                kind=spec.kind,
                categories=list(spec.categories) if spec.kind == "categorical" else None,
            )
            for spec in bundle.features
        ],
        metrics=dict(bundle.metrics),
        decision_threshold=bundle.decision_threshold,
        decision_shares=dict(bundle.decision_shares),
        training_rows=bundle.training_rows,
        test_rows=bundle.test_rows,
    )

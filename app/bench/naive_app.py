"""The baseline the benchmark compares against: the same model served the way many projects do.

prometheus-fastapi-instrumentator with its defaults, the scikit-learn pipeline called on a
one-row DataFrame, and each prediction inserted (and committed) synchronously before the
response. Not part of the service; only app/bench/bench_api.py starts it.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from credit_api.bundle import load_bundle
from credit_api.schemas import CreditApplication
from prediction_store import create_store_engine, predictions


def create_app() -> FastAPI:
    bundle = load_bundle(Path(os.environ["CREDIT_API_MODEL_DIR"]), "credit-score", "1")
    engine = create_store_engine(os.environ["CREDIT_API_DATABASE_URL"])
    app = FastAPI()
    Instrumentator().instrument(app).expose(app)

    @app.post("/api/v1/predict")
    def predict(application: CreditApplication) -> dict[str, object]:
        features = application.model_dump()
        score = float(bundle.pipeline.predict_proba(pd.DataFrame([features]))[0, 1])
        decision = "bad" if score >= bundle.decision_threshold else "good"
        request_id = uuid.uuid4().hex
        with engine.begin() as connection:
            connection.execute(
                predictions.insert(),
                {
                    "request_id": request_id,
                    "created_at": datetime.now(UTC),
                    "model": bundle.name,
                    "version": bundle.version,
                    "features": features,
                    "score": score,
                    "decision": decision,
                },
            )
        return {
            "request_id": request_id,
            "decision": decision,
            "probability_of_default": score,
            "model": bundle.name,
            "version": bundle.version,
        }

    return app

"""Credit applications from the German Credit data, as they are or drifted, sent to the API."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import httpx

from credit_api.data import load_german_credit
from credit_api.features import FEATURE_NAMES

Application = dict[str, Any]


def applications() -> list[Application]:
    """The 1000 real applications, as the API takes them (JSON-native numbers)."""
    frame = load_german_credit().loc[:, list(FEATURE_NAMES)]
    records: list[Application] = frame.to_dict(orient="records")
    return [{key: _native(value) for key, value in record.items()} for record in records]


def normal_traffic(count: int, seed: int = 1) -> list[Application]:
    """`count` applications drawn with replacement: the population the model was trained on."""
    pool = applications()
    return random.Random(seed).choices(pool, k=count)


def drifted_traffic(count: int, seed: int = 2) -> list[Application]:
    """A shifted population: only applicants over 45, asking for 80% more for 50% longer.

    Real attributes of real applications, moved the way a new marketing channel or an
    inflation shock would move them; age, credit amount and duration all drift.
    """
    older = [a for a in applications() if a["age_in_years"] > 45]
    drawn = random.Random(seed).choices(older, k=count)
    return [
        {
            **a,
            "credit_amount": round(min(a["credit_amount"] * 1.8, 1_000_000.0), 2),
            "duration_in_month": min(int(a["duration_in_month"] * 1.5), 120),
        }
        for a in drawn
    ]


def send(
    api_url: str, batch: Sequence[Application], *, chunk: int = 100, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Score the applications through POST /api/v1/predict/batch; returns the predictions."""
    predictions: list[dict[str, Any]] = []
    with httpx.Client(base_url=api_url, timeout=timeout) as client:
        for start in range(0, len(batch), chunk):
            response = client.post(
                "/api/v1/predict/batch",
                json={"applications": list(batch[start : start + chunk])},
            )
            response.raise_for_status()
            predictions.extend(response.json()["predictions"])
    return predictions


def _native(value: Any) -> Any:
    # pandas hands back numpy scalars; JSON wants Python ones.
    return value.item() if hasattr(value, "item") else value

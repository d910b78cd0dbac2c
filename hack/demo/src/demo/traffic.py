"""Credit applications from the German Credit data, as they are or drifted, sent to the API,
and the outcomes lenders later report for them (POST /api/v1/feedback)."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from functools import cache
from typing import Any

import httpx

from credit_api.data import load_german_credit
from credit_api.features import FEATURE_NAMES, NEGATIVE_CLASS, POSITIVE_CLASS, TARGET

Application = dict[str, Any]


def applications() -> list[Application]:
    """The 1000 real applications, as the API takes them (JSON-native numbers)."""
    frame = load_german_credit().loc[:, list(FEATURE_NAMES)]
    records: list[Application] = frame.to_dict(orient="records")
    return [{key: _native(value) for key, value in record.items()} for record in records]


def labelled_applications() -> list[tuple[Application, str]]:
    """The 1000 applications with what happened to each (`good`, or `bad`: a default)."""
    outcomes = load_german_credit()[TARGET].astype(str).tolist()
    return list(zip(applications(), outcomes, strict=True))


def labelled_traffic(count: int, seed: int = 3) -> tuple[list[Application], list[str]]:
    """`count` applications drawn with replacement, and their true outcomes, in order."""
    drawn = random.Random(seed).choices(labelled_applications(), k=count)
    return [application for application, _ in drawn], [outcome for _, outcome in drawn]


def contradicting_outcomes(predictions: Sequence[dict[str, Any]]) -> list[str]:
    """For each prediction, the outcome the model did not foresee: a lender reporting these
    sees a model that gets every case wrong (its quality collapses)."""
    return [
        NEGATIVE_CLASS if prediction["decision"] == POSITIVE_CLASS else POSITIVE_CLASS
        for prediction in predictions
    ]


@cache
def _model_refuses() -> tuple[bool, ...]:
    """Whether the credit model (trained here exactly as the API trains it: deterministic)
    refuses each of the 1000 applications."""
    from credit_api.training import train  # noqa: PLC0415 - seconds of training, when needed

    bundle = train()
    frame = load_german_credit().loc[:, list(FEATURE_NAMES)]
    scores = bundle.pipeline.predict_proba(frame)[:, 1]
    return tuple(bool(score >= bundle.decision_threshold) for score in scores)


YOUNG_BELOW = 25


def refused_group_traffic(count: int, seed: int = 4) -> list[Application]:
    """Traffic in which one group is refused far more often than the others: applicants under
    25 whom the model refuses, and older applicants it accepts.

    Real applications, scored by the real model: nothing is changed but which applications
    arrive, as when a channel brings the young applicants the model turns down (and the
    others it takes). The model's selection rate for the under-25s falls to nothing.
    """
    refused = _model_refuses()
    young = [
        a
        for a, no in zip(applications(), refused, strict=True)
        if no and a["age_in_years"] < YOUNG_BELOW
    ]
    others = [
        a
        for a, no in zip(applications(), refused, strict=True)
        if not no and a["age_in_years"] >= YOUNG_BELOW
    ]
    draw = random.Random(seed)
    batch = draw.choices(young, k=count // 2) + draw.choices(others, k=count - count // 2)
    draw.shuffle(batch)
    return batch


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


def send_feedback(
    api_url: str,
    predictions: Sequence[dict[str, Any]],
    outcomes: Sequence[str],
    *,
    timeout: float = 30.0,
    retry_for: float = 60.0,
) -> int:
    """Report each prediction's outcome through POST /api/v1/feedback; returns how many.

    A 503 (the store busy or the prediction not written yet) is retried after its Retry-After,
    for `retry_for` seconds at most; any other failure raises.
    """
    if len(predictions) != len(outcomes):
        raise ValueError(f"{len(predictions)} predictions but {len(outcomes)} outcomes")
    deadline = time.monotonic() + retry_for
    with httpx.Client(base_url=api_url, timeout=timeout) as client:
        for prediction, outcome in zip(predictions, outcomes, strict=True):
            body = {"request_id": prediction["request_id"], "outcome": outcome}
            while (response := client.post("/api/v1/feedback", json=body)).status_code == 503:
                if time.monotonic() > deadline:
                    break
                time.sleep(float(response.headers.get("Retry-After", "1")))
            response.raise_for_status()
    return len(predictions)


def _native(value: Any) -> Any:
    # pandas hands back numpy scalars; JSON wants Python ones.
    return value.item() if hasattr(value, "item") else value

"""Train the credit-score model: a logistic regression on one-hot and standardised features.

Deterministic: a fixed stratified split and a deterministic solver, so the same data and seed
give the same coefficients, metrics and reference sample.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from credit_api.bundle import ModelBundle
from credit_api.data import load_german_credit
from credit_api.features import CATEGORICAL, FEATURES, NUMERICAL, POSITIVE_CLASS, TARGET
from credit_api.scoring import compile_linear_scorer

log = logging.getLogger(__name__)

MODEL_NAME = "credit-score"
DEFAULT_VERSION = "1"
DEFAULT_SEED = 42
TEST_SIZE = 0.2
DECISION_THRESHOLD = 0.5
# The floor for the held-out ROC AUC; training fails loudly below it.
MIN_ROC_AUC = 0.75


@dataclass(frozen=True)
class Split:
    train_features: pd.DataFrame
    test_features: pd.DataFrame
    train_labels: np.ndarray
    test_labels: np.ndarray


def split_data(frame: pd.DataFrame, seed: int) -> Split:
    """A stratified hold-out split; labels are 1 for the positive ('bad', default) class."""
    features = frame.drop(columns=[TARGET])
    labels = (frame[TARGET] == POSITIVE_CLASS).to_numpy(dtype=np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=TEST_SIZE, random_state=seed, stratify=labels
    )
    return Split(train_x, test_x, train_y, test_y)


def build_pipeline() -> Pipeline:
    """The preprocessing and classifier, with every known category declared up front."""
    encoder = OneHotEncoder(
        categories=[list(spec.categories) for spec in FEATURES if spec.kind == "categorical"],
        handle_unknown="error",
        sparse_output=False,
    )
    preprocess = ColumnTransformer(
        [
            ("numerical", StandardScaler(), list(NUMERICAL)),
            ("categorical", encoder, list(CATEGORICAL)),
        ],
        remainder="drop",
    )
    return Pipeline(
        [("preprocess", preprocess), ("classifier", LogisticRegression(C=0.3, max_iter=2000))]
    )


def evaluate(pipeline: Pipeline, features: pd.DataFrame, labels: np.ndarray) -> dict[str, float]:
    scores = pipeline.predict_proba(features)[:, 1]
    decisions = (scores >= DECISION_THRESHOLD).astype(np.int64)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "accuracy": float(accuracy_score(labels, decisions)),
        "log_loss": float(log_loss(labels, scores)),
        "brier_score": float(brier_score_loss(labels, scores)),
    }


def train(version: str = DEFAULT_VERSION, seed: int = DEFAULT_SEED) -> ModelBundle:
    """Fit, evaluate on the held-out split, check the fast scorer, and return the bundle."""
    split = split_data(load_german_credit(), seed)
    pipeline = build_pipeline().fit(split.train_features, split.train_labels)
    metrics = evaluate(pipeline, split.test_features, split.test_labels)
    if metrics["roc_auc"] < MIN_ROC_AUC:
        raise RuntimeError(
            f"held-out ROC AUC {metrics['roc_auc']:.3f} is below the floor {MIN_ROC_AUC}"
        )
    bad_share = float(split.train_labels.mean())
    reference = split.train_features.sort_index()
    bundle = ModelBundle(
        name=MODEL_NAME,
        version=version,
        pipeline=pipeline,
        features=FEATURES,
        metrics=metrics,
        decision_threshold=DECISION_THRESHOLD,
        decision_shares={"good": 1.0 - bad_share, "bad": bad_share},
        reference=[_native(row) for row in reference.to_dict(orient="records")],
        training_rows=len(split.train_features),
        test_rows=len(split.test_features),
    )
    # Refuse to ship a bundle whose fast scorer disagrees with its own pipeline.
    compile_linear_scorer(pipeline).check_against(pipeline, load_german_credit())
    log.info("trained %s version %s: %s", MODEL_NAME, version, metrics)
    return bundle


def _native(row: dict[str, object]) -> dict[str, object]:
    # numpy scalars are not JSON; the reference sample goes to JSON files and the store.
    return {
        key: value.item() if isinstance(value, np.generic) else value for key, value in row.items()
    }

"""Score applications with the model's own coefficients instead of the pipeline's machinery.

The model is a logistic regression on standardised numbers and one-hot categories, so its
logit is linear in the raw inputs: each number contributes `x * coef / scale` (the means fold
into the intercept) and each category a constant. Evaluating that directly is a sum over the
features, where `Pipeline.predict_proba` on a one-row DataFrame spends its time on validation
and DataFrame handling (`make bench-api` prints both costs). `check_against` proves both give
the same probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# Agreement required between the compiled scorer and the pipeline: float rounding only.
TOLERANCE = 1e-9


class IncompatiblePipelineError(ValueError):
    """The pipeline is not the shape this scorer compiles (or its outputs disagree)."""


@dataclass(frozen=True)
class LinearScorer:
    """Probability of the positive class (default) from raw feature values."""

    intercept: float
    numerical_names: tuple[str, ...]
    # Python floats: multiplying them is much faster than indexing a numpy array per feature.
    numerical_weights: tuple[float, ...]
    categorical_weights: Mapping[str, Mapping[str, float]]

    def logit_one(self, row: Mapping[str, Any]) -> float:
        logit = self.intercept
        for name, weight in zip(self.numerical_names, self.numerical_weights, strict=True):
            logit += weight * row[name]
        for name, table in self.categorical_weights.items():
            logit += table[row[name]]
        return logit

    def score_one(self, row: Mapping[str, Any]) -> float:
        return _sigmoid(self.logit_one(row))

    def score_many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Vectorised: one matrix product for the numbers, one lookup pass per category."""
        numbers = np.array(
            [[row[name] for name in self.numerical_names] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(self.numerical_names))
        logits = numbers @ np.asarray(self.numerical_weights) + self.intercept
        for name, table in self.categorical_weights.items():
            logits += np.fromiter((table[row[name]] for row in rows), np.float64, len(rows))
        return _sigmoid_array(logits)

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return self.score_many(frame.to_dict(orient="records"))

    def check_against(self, pipeline: Pipeline, features: pd.DataFrame) -> float:
        """Raise unless both score every row alike; returns the largest difference."""
        expected = pipeline.predict_proba(features)[:, 1]
        batch = self.score_frame(features)
        single = np.array([self.score_one(row) for row in features.to_dict(orient="records")])
        difference = float(max(np.abs(batch - expected).max(), np.abs(single - expected).max()))
        if not difference <= TOLERANCE:
            raise IncompatiblePipelineError(
                f"compiled scorer differs from the pipeline by {difference:.3g}"
            )
        return difference


def compile_linear_scorer(pipeline: Pipeline) -> LinearScorer:
    """Fold the fitted scaler, encoder and logistic regression into one weight table."""
    preprocess, classifier = _parts(pipeline)
    coefficients = classifier.coef_[0]
    intercept = float(classifier.intercept_[0])
    offset = 0
    numerical_names: tuple[str, ...] = ()
    numerical_weights = np.zeros(0)
    categorical: dict[str, dict[str, float]] = {}
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder":
            continue
        if isinstance(transformer, StandardScaler):
            width = len(columns)
            coef = coefficients[offset : offset + width]
            scale = transformer.scale_ if transformer.with_std else np.ones(width)
            mean = transformer.mean_ if transformer.with_mean else np.zeros(width)
            numerical_names = tuple(columns)
            numerical_weights = coef / scale
            intercept -= float(np.dot(mean, numerical_weights))
            offset += width
        elif isinstance(transformer, OneHotEncoder):
            if transformer.drop_idx_ is not None:
                raise IncompatiblePipelineError("one-hot encoders with `drop` are not supported")
            for column, categories in zip(columns, transformer.categories_, strict=True):
                weights = coefficients[offset : offset + len(categories)]
                categorical[column] = {
                    str(category): float(w) for category, w in zip(categories, weights, strict=True)
                }
                offset += len(categories)
        else:
            raise IncompatiblePipelineError(f"unsupported transformer {name!r}: {transformer!r}")
    if offset != len(coefficients):
        raise IncompatiblePipelineError(
            f"the transformers produce {offset} columns, the classifier has {len(coefficients)}"
        )
    return LinearScorer(
        intercept, numerical_names, tuple(float(w) for w in numerical_weights), categorical
    )


def _parts(pipeline: Pipeline) -> tuple[ColumnTransformer, LogisticRegression]:
    if len(pipeline.steps) != 2:
        raise IncompatiblePipelineError("expected a pipeline of preprocessing and a classifier")
    preprocess, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer):
        raise IncompatiblePipelineError("the first step must be a ColumnTransformer")
    if not isinstance(classifier, LogisticRegression) or classifier.coef_.shape[0] != 1:
        raise IncompatiblePipelineError("the last step must be a binary LogisticRegression")
    return preprocess, classifier


def _sigmoid(logit: float) -> float:
    # Written both ways so exp never overflows.
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    exp = math.exp(logit)
    return exp / (1.0 + exp)


def _sigmoid_array(logits: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.empty_like(logits)
    positive = logits >= 0
    result[positive] = 1.0 / (1.0 + np.exp(-logits[positive]))
    exp = np.exp(logits[~positive])
    result[~positive] = exp / (1.0 + exp)
    return result

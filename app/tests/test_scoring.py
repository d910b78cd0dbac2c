from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from credit_api.bundle import ModelBundle
from credit_api.data import load_german_credit
from credit_api.scoring import IncompatiblePipelineError, compile_linear_scorer


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return load_german_credit().drop(columns=["creditability"])


def test_compiled_scorer_equals_the_pipeline_on_every_row(
    trained_bundle: ModelBundle, features: pd.DataFrame
) -> None:
    scorer = compile_linear_scorer(trained_bundle.pipeline)
    expected = trained_bundle.pipeline.predict_proba(features)[:, 1]
    records = features.to_dict("records")
    np.testing.assert_allclose(scorer.score_many(records), expected, rtol=0, atol=1e-12)
    single = np.array([scorer.score_one(row) for row in records])
    np.testing.assert_allclose(single, expected, rtol=0, atol=1e-12)
    assert scorer.check_against(trained_bundle.pipeline, features) < 1e-12


def test_scores_spread_over_the_unit_interval(
    trained_bundle: ModelBundle, features: pd.DataFrame
) -> None:
    scores = compile_linear_scorer(trained_bundle.pipeline).score_frame(features)
    assert 0 < scores.min() < 0.1
    assert 0.9 < scores.max() < 1


def test_extreme_inputs_do_not_overflow(
    trained_bundle: ModelBundle, features: pd.DataFrame
) -> None:
    scorer = compile_linear_scorer(trained_bundle.pipeline)
    row = features.to_dict("records")[0]
    huge = {**row, "credit_amount": 1e300, "duration_in_month": 1e300}
    tiny = {**row, "credit_amount": -1e300, "duration_in_month": -1e300}
    for extreme in (huge, tiny):
        single = scorer.score_one(extreme)
        batch = scorer.score_many([extreme])[0]
        assert single in (0.0, 1.0)
        assert batch == single


def test_other_models_are_refused(trained_bundle: ModelBundle, features: pd.DataFrame) -> None:
    preprocess = trained_bundle.pipeline.steps[0][1]
    forest = Pipeline([("preprocess", preprocess), ("classifier", RandomForestClassifier())])
    with pytest.raises(IncompatiblePipelineError, match="LogisticRegression"):
        compile_linear_scorer(forest)


def test_a_disagreeing_scorer_is_caught(
    trained_bundle: ModelBundle, features: pd.DataFrame
) -> None:
    scorer = compile_linear_scorer(trained_bundle.pipeline)
    shifted = type(scorer)(
        scorer.intercept + 1e-6,
        scorer.numerical_names,
        scorer.numerical_weights,
        scorer.categorical_weights,
    )
    with pytest.raises(IncompatiblePipelineError, match="differs"):
        shifted.check_against(trained_bundle.pipeline, features)

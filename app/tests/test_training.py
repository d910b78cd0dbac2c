from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from credit_api.bundle import BundleError, ModelBundle, bundle_path, load_bundle, save_bundle
from credit_api.data import load_german_credit
from credit_api.features import FEATURE_NAMES
from credit_api.training import MIN_ROC_AUC, MODEL_NAME, train


def test_the_model_beats_the_auc_floor_on_held_out_data(trained_bundle: ModelBundle) -> None:
    assert trained_bundle.metrics["roc_auc"] >= MIN_ROC_AUC
    assert trained_bundle.test_rows == 200
    assert trained_bundle.training_rows == 800


def test_training_is_deterministic(trained_bundle: ModelBundle) -> None:
    again = train()
    assert again.metrics == trained_bundle.metrics
    np.testing.assert_array_equal(again.pipeline[-1].coef_, trained_bundle.pipeline[-1].coef_)
    assert again.reference == trained_bundle.reference


def test_another_seed_gives_another_split(trained_bundle: ModelBundle) -> None:
    other = train(seed=7)
    assert other.reference != trained_bundle.reference


def test_reference_is_the_training_features(trained_bundle: ModelBundle) -> None:
    data = load_german_credit()
    rows = {json.dumps(row, sort_keys=True) for row in data[list(FEATURE_NAMES)].to_dict("records")}
    assert len(trained_bundle.reference) == 800
    assert all(set(row) == set(FEATURE_NAMES) for row in trained_bundle.reference)
    assert all(json.dumps(row, sort_keys=True) in rows for row in trained_bundle.reference)


def test_decision_shares_come_from_the_training_labels(trained_bundle: ModelBundle) -> None:
    # The data set is 700 good / 300 bad and the split is stratified.
    assert trained_bundle.decision_shares == pytest.approx({"good": 0.7, "bad": 0.3})


def test_bundle_round_trip(tmp_path: Path, trained_bundle: ModelBundle) -> None:
    path = save_bundle(trained_bundle, tmp_path)
    assert path == bundle_path(tmp_path, MODEL_NAME, "1")
    loaded = load_bundle(tmp_path, MODEL_NAME, "1")
    assert loaded.metrics == trained_bundle.metrics
    assert loaded.features == trained_bundle.features
    assert loaded.reference == trained_bundle.reference
    assert loaded.decision_shares == trained_bundle.decision_shares
    frame = load_german_credit().drop(columns=["creditability"])
    np.testing.assert_array_equal(
        loaded.pipeline.predict_proba(frame), trained_bundle.pipeline.predict_proba(frame)
    )
    card = json.loads((path / "card.json").read_text())
    assert card["name"] == "credit-score"
    assert card["version"] == "1"


def test_saving_again_replaces_the_bundle(tmp_path: Path, trained_bundle: ModelBundle) -> None:
    save_bundle(trained_bundle, tmp_path)
    save_bundle(trained_bundle, tmp_path)
    assert load_bundle(tmp_path, MODEL_NAME, "1").version == "1"
    leftovers = [p.name for p in (tmp_path / MODEL_NAME).iterdir() if p.name != "1"]
    assert leftovers == []


def test_missing_or_broken_bundles_are_clear_errors(
    tmp_path: Path, trained_bundle: ModelBundle
) -> None:
    with pytest.raises(BundleError, match="no complete model bundle"):
        load_bundle(tmp_path, MODEL_NAME, "1")
    path = save_bundle(trained_bundle, tmp_path)
    (path / "pipeline.joblib").write_bytes(b"not a pickle")
    with pytest.raises(BundleError, match="cannot read"):
        load_bundle(tmp_path, MODEL_NAME, "1")


def test_versions_are_separate_bundles(tmp_path: Path) -> None:
    save_bundle(train(version="2"), tmp_path)
    assert load_bundle(tmp_path, MODEL_NAME, "2").version == "2"
    with pytest.raises(BundleError):
        load_bundle(tmp_path, MODEL_NAME, "1")

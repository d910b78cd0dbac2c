"""Normalising Evidently's snapshot: pure functions, checked on real Evidently output."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from drift_job.compute import run_report
from drift_job.config import build_config
from drift_job.normalise import (
    MISSING_STATTEST,
    ColumnDrift,
    Rows,
    SnapshotFormatError,
    build_result,
    column_drift_from_metric,
    columns_from_snapshot,
    evidently_drifted_count,
    feature_to_json,
    missing_columns,
    result_to_json,
)

from .conftest import feature_specs

END = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def age_split_snapshot(german_credit: pd.DataFrame) -> dict[str, Any]:
    """Real Evidently output: auto-selected tests plus per-column methods and thresholds."""
    config = build_config(
        store_url="sqlite://",
        model="credit-score",
        column_methods={"credit_amount": "psi", "purpose": "jensenshannon"},
        column_thresholds={"duration_in_month": 0.2},
    )
    columns = [(spec.name, spec.kind) for spec in feature_specs(german_credit)]
    younger = german_credit[german_credit.age_in_years < 40]
    older = german_credit[german_credit.age_in_years >= 40]
    snapshot: dict[str, Any] = run_report(younger, older, columns, config).dict()
    return snapshot


def test_every_column_is_parsed_with_its_test_score_and_threshold(
    age_split_snapshot: dict[str, Any], german_credit: pd.DataFrame
) -> None:
    columns = {c.name: c for c in columns_from_snapshot(age_split_snapshot)}
    assert set(columns) == set(german_credit.columns)
    # Auto-selected tests come by display name, configured ones by id: both end up named alike.
    assert columns["age_in_years"].stattest == "K-S p_value"
    assert columns["credit_amount"].stattest == "PSI"
    assert columns["purpose"].stattest == "Jensen-Shannon distance"
    assert columns["duration_in_month"].threshold == 0.2
    assert columns["credit_amount"].threshold == 0.1  # PSI's default, as Evidently reports it
    assert columns["age_in_years"].drifted
    assert all(isinstance(c.score, float) and c.score >= 0 for c in columns.values())


def test_our_verdicts_match_evidentlys_count(age_split_snapshot: dict[str, Any]) -> None:
    columns = columns_from_snapshot(age_split_snapshot)
    count = evidently_drifted_count(age_split_snapshot)
    assert count is not None
    assert count > 0
    assert sum(c.drifted for c in columns) == count


def test_a_p_value_at_the_threshold_is_not_drift_and_a_distance_is() -> None:
    def metric(method: str, value: float) -> dict[str, Any]:
        return {
            "metric_name": f"ValueDrift(column=x,method={method},threshold=0.05)",
            "config": {
                "type": "evidently:metric_v2:ValueDrift",
                "column": "x",
                "method": method,
                "threshold": 0.05,
            },
            "value": value,
        }

    assert not column_drift_from_metric(metric("K-S p_value", 0.05)).drifted
    assert column_drift_from_metric(metric("ks", 0.0499)).drifted
    assert column_drift_from_metric(metric("wasserstein", 0.05)).drifted
    assert not column_drift_from_metric(metric("Wasserstein distance (normed)", 0.0499)).drifted
    assert not column_drift_from_metric(metric("psi", math.nan)).drifted


@pytest.mark.parametrize(
    "metric",
    [
        {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "x"}, "value": 0.1},
        {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "x", "method": "ks"}},
        {"metric_name": "ValueDrift(column=x)", "value": 0.3},
    ],
)
def test_a_malformed_metric_is_an_error_not_a_guess(metric: dict[str, Any]) -> None:
    with pytest.raises(SnapshotFormatError):
        column_drift_from_metric(metric)


def test_an_unknown_test_name_is_an_error() -> None:
    metric = {
        "config": {
            "type": "evidently:metric_v2:ValueDrift",
            "column": "x",
            "method": "mystery",
            "threshold": 0.1,
        },
        "value": 0.3,
    }
    with pytest.raises(KeyError, match="mystery"):
        column_drift_from_metric(metric)


def test_a_snapshot_without_metrics_is_an_error() -> None:
    with pytest.raises(SnapshotFormatError):
        columns_from_snapshot({"tests": []})


def _result(drifted: int, total: int, share: float = 0.5) -> Any:
    columns = [ColumnDrift(f"c{i:02d}", "K-S p_value", 0.01, 0.05, True) for i in range(drifted)]
    columns += [
        ColumnDrift(f"c{i:02d}", "K-S p_value", 0.5, 0.05, False) for i in range(drifted, total)
    ]
    return build_result(
        model="credit-score",
        model_version="1",
        window_start=END - timedelta(hours=1),
        window_end=END,
        rows=Rows(reference=800, current=1234, compared=800, sampled=True),
        columns=list(reversed(columns)),
        drift_share_threshold=share,
    )


def test_dataset_drift_starts_at_the_drift_share() -> None:
    assert not _result(4, 20).dataset_drift
    assert _result(10, 20).dataset_drift
    assert _result(10, 20).drift_share == 0.5
    assert not _result(0, 0).dataset_drift


def test_the_summary_and_json_carry_the_verdict() -> None:
    result = _result(4, 20)
    assert result.summary() == (
        "4 of 20 columns drifted (share 0.20 >= 0.50? no); "
        "compared a uniform sample of 800 of 1234 rows"
    )
    document = result_to_json(result)
    assert document["windowStart"] == "2026-01-01T11:00:00Z"
    assert document["windowEnd"] == "2026-01-01T12:00:00Z"
    assert document["rows"] == {"reference": 800, "current": 1234, "compared": 800, "sampled": True}
    assert document["driftedColumns"] == 4
    assert [f["name"] for f in document["features"]] == sorted(f"c{i:02d}" for i in range(20))


def test_a_missing_column_counts_as_drifted_without_a_score() -> None:
    (column,) = missing_columns(["telephone"])
    assert column.drifted
    assert feature_to_json(column) == {
        "name": "telephone",
        "stattest": MISSING_STATTEST,
        "drifted": True,
    }
    nan_score = ColumnDrift("x", "PSI", math.nan, 0.1, False)
    assert "score" not in feature_to_json(nan_score)

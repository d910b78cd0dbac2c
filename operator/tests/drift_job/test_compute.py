"""Evidently on the German Credit data: real drift is found, random splits stay quiet.

Nothing here is hard-coded from a previous run: which columns really differ is computed with
an independent two-sample test (SciPy), and the job's verdicts are checked against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from drift_job.compute import Column, comparable_columns, run_report
from drift_job.config import DriftJobConfig, build_config
from drift_job.normalise import (
    ColumnDrift,
    columns_from_snapshot,
    evidently_drifted_count,
)

from .conftest import feature_specs


def _config(**overrides: object) -> DriftJobConfig:
    return build_config(store_url="sqlite://", model="credit-score", **overrides)


def _columns(frame: pd.DataFrame) -> list[Column]:
    return [(spec.name, spec.kind) for spec in feature_specs(frame)]


def _drift(
    reference: pd.DataFrame, current: pd.DataFrame, config: DriftJobConfig | None = None
) -> dict[str, ColumnDrift]:
    columns = _columns(reference)
    snapshot = run_report(reference, current, columns, config or _config())
    found = columns_from_snapshot(snapshot.dict())
    # Our verdicts, recomputed from score and threshold, agree with Evidently's own count.
    assert evidently_drifted_count(snapshot.dict()) == sum(c.drifted for c in found)
    return {column.name: column for column in found}


def _independent_p_value(reference: pd.Series, current: pd.Series) -> float:
    """Kolmogorov-Smirnov for continuous numbers, a contingency chi-square for the rest."""
    values = pd.concat([reference, current])
    if values.dtype != object and values.nunique() > 5:
        return float(stats.ks_2samp(reference, current).pvalue)
    table = pd.crosstab(values, np.r_[np.zeros(len(reference)), np.ones(len(current))])
    return float(stats.chi2_contingency(table).pvalue)


def test_age_split_finds_the_attributes_that_really_differ(german_credit: pd.DataFrame) -> None:
    younger = german_credit[german_credit.age_in_years < 40]
    older = german_credit[german_credit.age_in_years >= 40]
    found = _drift(younger, older)
    independent = {
        name: _independent_p_value(younger[name], older[name]) for name in german_credit.columns
    }
    drifted = {name for name, column in found.items() if column.drifted}

    assert found["age_in_years"].drifted
    clearly_different = {name for name, p in independent.items() if p < 1e-3}
    clearly_alike = {name for name, p in independent.items() if p > 0.5}
    assert len(clearly_different) >= 4  # the split really moves more than age
    assert clearly_different <= drifted
    assert not drifted & clearly_alike
    # Every flagged column differs at least weakly by the independent test too.
    assert all(independent[name] < 0.1 for name in drifted), {n: independent[n] for n in drifted}


@pytest.mark.slow
def test_random_splits_rarely_raise_dataset_drift(german_credit: pd.DataFrame) -> None:
    rng = np.random.default_rng(20260101)
    splits = 50
    dataset_drifts = 0
    for _ in range(splits):
        mask = rng.random(len(german_credit)) < 0.5
        found = _drift(german_credit[mask], german_credit[~mask])
        drifted = sum(column.drifted for column in found.values())
        dataset_drifts += drifted / len(found) >= 0.5
    # Per column the rate is well above the nominal 5% (Evidently's chi-square takes the
    # reference's proportions as exact; see drift_job.sampling), but a dataset verdict needs
    # half the columns at once.
    assert dataset_drifts <= 0.05 * splits


@pytest.mark.parametrize(("factor", "drifts"), [(1.5, True), (1.2, True), (1.0, False)])
def test_credit_amount_scaled_by_a_known_factor(
    german_credit: pd.DataFrame, factor: float, drifts: bool
) -> None:
    rng = np.random.default_rng(7)
    mask = rng.random(len(german_credit)) < 0.5
    reference, current = german_credit[mask], german_credit[~mask].copy()
    current["credit_amount"] *= factor
    found = _drift(reference, current)
    assert found["credit_amount"].drifted is drifts
    assert found["credit_amount"].stattest == "K-S p_value"  # auto-selected, display name


def test_configured_methods_and_thresholds_are_applied_and_parsed(
    german_credit: pd.DataFrame,
) -> None:
    rng = np.random.default_rng(11)
    mask = rng.random(len(german_credit)) < 0.5
    reference, current = german_credit[mask], german_credit[~mask].copy()
    current["credit_amount"] *= 1.5
    config = _config(
        method="psi",
        column_methods={"duration_in_month": "wasserstein", "purpose": "jensenshannon"},
        column_thresholds={"credit_amount": 0.05, "purpose": 0.5},
    )
    found = _drift(reference, current, config)
    assert found["duration_in_month"].stattest == "Wasserstein distance (normed)"
    assert found["purpose"].stattest == "Jensen-Shannon distance"
    assert found["purpose"].threshold == 0.5
    assert found["credit_amount"].stattest == "PSI"
    assert found["credit_amount"].threshold == 0.05
    assert found["credit_amount"].drifted  # a distance at or above its threshold
    assert not found["purpose"].drifted


def test_a_one_kind_method_leaves_the_other_kind_automatic(german_credit: pd.DataFrame) -> None:
    half = len(german_credit) // 2
    found = _drift(german_credit[:half], german_credit[half:], _config(method="ks"))
    assert found["credit_amount"].stattest == "K-S p_value"
    assert found["purpose"].stattest == "chi-square p_value"


def test_missing_values_and_unseen_categories_are_handled(german_credit: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    mask = rng.random(len(german_credit)) < 0.5
    reference, current = german_credit[mask].copy(), german_credit[~mask].copy()
    reference.loc[reference.index[::10], "duration_in_month"] = np.nan
    current.loc[current.index[::7], "duration_in_month"] = np.nan
    current.loc[current.index[::9], "housing"] = None
    # A category the reference never saw: the goodness-of-fit test treats it as impossible.
    current.loc[current.index[:5], "purpose"] = "space travel"
    found = _drift(reference, current)
    assert not found["duration_in_month"].drifted  # missing values are left out, not drift
    assert not found["housing"].drifted
    assert found["purpose"].drifted
    assert found["purpose"].score == 0.0


def test_columns_empty_on_one_side_are_split_out(german_credit: pd.DataFrame) -> None:
    reference = german_credit.iloc[:500].copy()
    current = german_credit.iloc[500:].copy()
    current["credit_amount"] = np.nan
    reference["telephone"] = None
    split = comparable_columns(reference, current, _columns(german_credit))
    assert split.missing_in_current == ("credit_amount",)
    assert split.missing_in_reference == ("telephone",)
    tested = {name for name, _ in split.tested}
    assert tested == set(german_credit.columns) - {"credit_amount", "telephone"}

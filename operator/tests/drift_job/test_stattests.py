"""The stattest table against Evidently's own registry and verdicts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests import registry
from evidently.legacy.core import ColumnType

from drift_job.stattests import STAT_TESTS, StatTest, find_stattest, is_drifted

_KINDS = {ColumnType.Numerical: "numerical", ColumnType.Categorical: "categorical"}


def _registered() -> dict[str, registry.StatTest]:
    tests: dict[str, registry.StatTest] = {}
    for by_kind in registry._registered_stat_tests.values():
        for test in by_kind.values():
            if ColumnType.Text not in test.allowed_feature_types:
                tests[test.name] = test
    return tests


def test_the_table_lists_every_tabular_test_evidently_registers() -> None:
    registered = _registered()
    assert {test.id for test in STAT_TESTS} == set(registered)
    for test in STAT_TESTS:
        evidently_test = registered[test.id]
        assert test.display_name == evidently_test.display_name
        assert test.kinds == {_KINDS[kind] for kind in evidently_test.allowed_feature_types}


def _samples(kind: str, shift: float) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(5)
    if kind == "numerical":
        return pd.Series(rng.normal(0, 1, 300)), pd.Series(rng.normal(shift, 1, 300))
    weights = np.array([0.5, 0.5])
    moved = np.array([0.5 - shift / 4, 0.5 + shift / 4])
    return (
        pd.Series(rng.choice(["a", "b"], 300, p=weights)),
        pd.Series(rng.choice(["a", "b"], 300, p=moved)),
    )


@pytest.mark.parametrize("test", STAT_TESTS, ids=lambda test: test.id)
@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_our_rule_gives_evidentlys_verdict(test: StatTest, shift: float) -> None:
    """P-value or distance: the rule on score and threshold reproduces Evidently's drifted flag."""
    evidently_test = _registered()[test.id]
    kind = sorted(test.kinds)[0]
    reference, current = _samples(kind, shift)
    column_type = ColumnType.Numerical if kind == "numerical" else ColumnType.Categorical
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Anderson-Darling's capped p-values
        result = evidently_test(reference, current, column_type, None)
    assert is_drifted(result.drift_score, result.actual_threshold, test.score) == result.drifted


def test_names_resolve_by_id_and_by_display_name() -> None:
    assert find_stattest("ks") is find_stattest("K-S p_value")
    assert find_stattest("psi").score == "distance"
    with pytest.raises(KeyError, match="unknown statistical test 'nope'"):
        find_stattest("nope")


def test_thresholds_are_strict_for_p_values_and_inclusive_for_distances() -> None:
    assert is_drifted(0.049, 0.05, "p_value")
    assert not is_drifted(0.05, 0.05, "p_value")
    assert is_drifted(0.1, 0.1, "distance")
    assert not is_drifted(0.099, 0.1, "distance")

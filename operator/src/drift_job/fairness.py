"""Fairness across protected groups, per attribute, with fairlearn's MetricFrame.

For each attribute of the configuration the window's predictions are grouped (categories
gathered into named groups, numbers cut into bins, or each category its own group) and, per
group: the selection rate (the share given the favourable decision), its difference from the
reference group's (statistical parity difference) and its ratio to it (disparate impact
ratio); where outcomes are known, the true-positive rate (the share of those whose outcome was
the favourable one who got it: equal opportunity) and its difference from the reference
group's. An attribute shows a disparity when every group holds at least `minRowsPerGroup` rows
and some group's ratio leaves [minDisparateImpactRatio, maxDisparateImpactRatio]: the four-fifths
rule by default. Pure functions of DataFrames: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

from drift_job.config import ConfigError
from drift_job.fairness_config import FairnessAttribute, FairnessConfig
from drift_job.findings import AttributeFairness, FairnessResult, GroupFairness
from prediction_store import DECISION_COLUMN, OUTCOME_COLUMN

# Each category its own group: more than this is not a protected attribute but an identifier,
# and would make unbounded metric labels.
MAX_GROUPS = 50


def group_of(values: pd.Series, attribute: FairnessAttribute) -> pd.Series:
    """The group of each value (missing when the value is in no group)."""
    if attribute.bins:
        numbers = pd.to_numeric(values, errors="coerce")
        edges = [-math.inf, *(b.below for b in attribute.bins if b.below is not None), math.inf]
        cut = pd.cut(numbers, edges, right=False, labels=[b.name for b in attribute.bins])
        return cut.astype(object).where(cut.notna(), None)
    if attribute.groups:
        mapping = {value: group.name for group in attribute.groups for value in group.values}
        return values.map(mapping).astype(object)
    if pd.api.types.is_numeric_dtype(values):
        raise ConfigError(f"--fairness: the numerical attribute {attribute.feature!r} needs bins")
    named = values.astype(object).where(values.notna(), None)
    if named.nunique() > MAX_GROUPS:
        raise ConfigError(
            f"--fairness: {attribute.feature!r} has more than {MAX_GROUPS} categories;"
            " gather them into groups"
        )
    return named


def _declared_groups(attribute: FairnessAttribute, groups: pd.Series) -> list[str]:
    declared = [group.name for group in attribute.groups] + [b.name for b in attribute.bins]
    return declared or sorted(str(name) for name in groups.dropna().unique())


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def _difference(value: float | None, reference: float | None) -> float | None:
    return None if value is None or reference is None else value - reference


def assess_attribute(
    window: pd.DataFrame,
    labelled: pd.DataFrame | None,
    attribute: FairnessAttribute,
    config: FairnessConfig,
) -> AttributeFairness:
    """The attribute's per-group metrics over the window (selection) and the labelled
    predictions (true-positive rate), when given."""
    favourable = config.favourable_decision
    groups = group_of(window[attribute.feature], attribute)
    names = _declared_groups(attribute, groups)
    if attribute.reference not in names:
        raise ConfigError(
            f"--fairness: reference group {attribute.reference!r} of {attribute.feature!r} "
            f"is not among its groups ({', '.join(names)})"
        )
    grouped = groups.notna().to_numpy()
    chosen = (window[DECISION_COLUMN] == favourable).to_numpy(dtype=np.int64)[grouped]
    cells = _cells(groups[grouped], chosen, chosen)
    rows = {str(k): int(v) for k, v in cells.groupby("group")["weight"].sum().items()}
    rates = _by_group(selection_rate, cells)
    tpr, labelled_rows = _true_positive_rates(labelled, attribute, favourable)
    reference_rate = rates.get(attribute.reference)
    reference_tpr = tpr.get(attribute.reference)
    entries = []
    for name in names:
        rate = rates.get(name)
        entries.append(
            GroupFairness(
                name=name,
                rows=rows.get(name, 0),
                selection_rate=rate,
                statistical_parity_difference=_difference(rate, reference_rate),
                disparate_impact_ratio=_ratio(rate, reference_rate),
                labelled=labelled_rows.get(name, 0),
                true_positive_rate=tpr.get(name),
                true_positive_rate_difference=_difference(tpr.get(name), reference_tpr),
            )
        )
    enough = all(entry.rows >= config.min_rows_per_group for entry in entries)
    outside = [
        entry
        for entry in entries
        if entry.disparate_impact_ratio is not None
        and not (
            config.min_disparate_impact_ratio
            <= entry.disparate_impact_ratio
            <= config.max_disparate_impact_ratio
        )
    ]
    return AttributeFairness(
        feature=attribute.feature,
        reference=attribute.reference,
        groups=tuple(entries),
        ungrouped_rows=int((~grouped).sum()),
        enough_rows=enough,
        disparity=enough and bool(outside),
    )


def _true_positive_rates(
    labelled: pd.DataFrame | None, attribute: FairnessAttribute, favourable: str
) -> tuple[dict[str, float], dict[str, int]]:
    """Per group, the share of those whose outcome was favourable who got the favourable
    decision, and the labelled rows; a group without a favourable outcome has no rate."""
    if labelled is None or labelled.empty:
        return {}, {}
    groups = group_of(labelled[attribute.feature], attribute)
    grouped = groups.notna().to_numpy()
    if not grouped.any():
        return {}, {}
    deserved = (labelled[OUTCOME_COLUMN] == favourable).to_numpy(dtype=np.int64)[grouped]
    got = (labelled[DECISION_COLUMN] == favourable).to_numpy(dtype=np.int64)[grouped]
    cells = _cells(groups[grouped], deserved, got)
    rows = {str(k): int(v) for k, v in cells.groupby("group")["weight"].sum().items()}
    positives = cells[cells["y_true"] == 1].groupby("group")["weight"].sum()
    rates = {
        name: rate
        for name, rate in _by_group(true_positive_rate, cells).items()
        if positives.get(name, 0) > 0
    }
    return rates, rows


def _cells(groups: pd.Series, y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """The rows gathered by (group, y_true, y_pred), with how many rows each cell holds.

    MetricFrame then weighs each cell by its rows (`sample_weight`): the same per-group
    metrics as over the rows themselves, where fairlearn's per-row handling would cost seconds
    on a window of tens of thousands of predictions.
    """
    frame = pd.DataFrame({"group": groups.astype(str).to_numpy(), "y_true": y_true,
                          "y_pred": y_pred})  # fmt: skip
    return frame.groupby(["group", "y_true", "y_pred"]).size().reset_index(name="weight")


def _by_group(metric: Callable[..., float], cells: pd.DataFrame) -> dict[str, float]:
    if cells.empty:
        return {}
    frame = MetricFrame(
        metrics=metric,
        y_true=cells["y_true"].to_numpy(),
        y_pred=cells["y_pred"].to_numpy(),
        sensitive_features=cells["group"].to_numpy(),
        sample_params={"sample_weight": cells["weight"].to_numpy()},
    )
    return {str(name): float(value) for name, value in frame.by_group.items()}


def assess_fairness(
    window: pd.DataFrame, labelled: pd.DataFrame | None, config: FairnessConfig
) -> FairnessResult:
    return FairnessResult(
        favourable_decision=config.favourable_decision,
        min_rows_per_group=config.min_rows_per_group,
        attributes=tuple(
            assess_attribute(window, labelled, attribute, config) for attribute in config.attributes
        ),
    )

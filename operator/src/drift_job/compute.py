"""Evidently's `DataDriftPreset` over the reference and the current window, and a `ValueDrift` of
each of the model's outputs beside it.

Columns without a value on one side cannot be tested (Evidently refuses an empty column): they
are left out of the run and reported by the caller. Evidently and pandas are imported here and
in the readers only, never by the operator.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from drift_job.config import DriftJobConfig
from drift_job.stattests import ColumnKind, find_stattest

Column = tuple[str, ColumnKind]


@dataclass(frozen=True)
class ComparableColumns:
    tested: tuple[Column, ...]
    missing_in_current: tuple[str, ...]  # no value at all in the window
    missing_in_reference: tuple[str, ...]  # no value at all in the reference sample


def comparable_columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[Column]
) -> ComparableColumns:
    """Split the columns into those Evidently can test and those empty on one side."""
    empty_reference = {name for name, _ in columns if reference[name].notna().sum() == 0}
    empty_current = {name for name, _ in columns if current[name].notna().sum() == 0}
    return ComparableColumns(
        tested=tuple(c for c in columns if c[0] not in empty_reference | empty_current),
        missing_in_current=tuple(sorted(empty_current - empty_reference)),
        missing_in_reference=tuple(sorted(empty_reference)),
    )


def build_preset(config: DriftJobConfig, tested: Sequence[Column]) -> DataDriftPreset:
    """The preset for these columns, with the configured methods and thresholds.

    A method set for all columns that can test only one kind (ks: numerical, chisquare:
    categorical) applies to that kind; the other kind keeps Evidently's automatic choice, and
    every column's status names the test it got.
    """
    names = {name for name, _ in tested}
    method_kwargs: dict[str, str] = {}
    if config.method != "auto":
        kinds = find_stattest(config.method).kinds
        key = (
            "method"
            if len(kinds) == 2
            else ("num_method" if "numerical" in kinds else "cat_method")
        )
        method_kwargs[key] = config.method
    per_column_method = {k: v for k, v in config.column_methods.items() if k in names}
    per_column_threshold = {k: v for k, v in config.column_thresholds.items() if k in names}
    return DataDriftPreset(
        columns=[name for name, _ in tested],
        drift_share=config.drift_share,
        threshold=config.threshold,
        per_column_method=per_column_method or None,
        per_column_threshold=per_column_threshold or None,
        **method_kwargs,
    )


def output_drift(config: DriftJobConfig, outputs: Sequence[Column]) -> list[ValueDrift]:
    """A `ValueDrift` per output column, with the method and threshold the preset would give it.

    Outside the preset, so that its drifted-columns count (the report's headline, the Evidently
    UI's panels) counts the features, as `driftShare` does."""
    found = []
    for name, kind in outputs:
        method = config.column_methods.get(name)
        if method is None and config.method != "auto":
            method = config.method if kind in find_stattest(config.method).kinds else None
        threshold = config.column_thresholds.get(name, config.threshold)
        found.append(ValueDrift(column=name, method=method, threshold=threshold))
    return found


def run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    tested: Sequence[Column],
    config: DriftJobConfig,
    outputs: Sequence[Column] = (),
) -> Any:
    """Evidently's snapshot (a `Snapshot`: .dict(), .json(), .save_html()): the features'
    drift (`tested`) and the model's outputs' (`outputs`)."""
    every = [*tested, *outputs]
    definition = DataDefinition(
        numerical_columns=[name for name, kind in every if kind == "numerical"],
        categorical_columns=[name for name, kind in every if kind == "categorical"],
    )
    names = [name for name, _ in every]
    report = Report([build_preset(config, tested), *output_drift(config, outputs)])
    with warnings.catch_warnings():
        # SciPy warns on a category the reference never had (expected count 0): the test still
        # answers (p-value 0, drift), and the warning would only clutter the job's log.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return report.run(
            Dataset.from_pandas(current[names], data_definition=definition),
            Dataset.from_pandas(reference[names], data_definition=definition),
        )

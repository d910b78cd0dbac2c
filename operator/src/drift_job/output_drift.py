"""Drift of the model's own output: the window's scores and decisions against the reference's.

The two are compared in the same Evidently run as the features, as columns of their own
(`prediction_score`, numerical; `prediction_decision`, categorical), and reported apart from
them: they do not count towards the features' drift share. The reference is the model's output
on its reference sample, registered in the store with the model; a ModelMonitor may set the
reference decision shares instead (`spec.model.referenceDecisionShares`), and then the
reference's decision column is made of exactly those shares.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from drift_job.normalise import ColumnDrift
from prediction_store import DECISION_COLUMN, OUTPUT_COLUMNS, SCORE_COLUMN


def shares_of(decisions: pd.Series) -> dict[str, float]:
    """The share of each decision among the non-missing ones."""
    counts = decisions.dropna().astype(str).value_counts(normalize=True)
    return {str(name): round(float(share), 6) for name, share in sorted(counts.items())}


def decisions_with_shares(shares: Mapping[str, float], rows: int) -> pd.Series:
    """`rows` decisions in exactly these shares (largest remainders), for a reference the spec
    gives as shares."""
    exact = {name: share * rows for name, share in shares.items()}
    counts = {name: int(value) for name, value in exact.items()}
    short = rows - sum(counts.values())
    for name in sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)[:short]:
        counts[name] += 1
    return pd.Series([name for name, count in counts.items() for _ in range(count)], dtype=object)


def output_reference(
    reference: pd.DataFrame, override: Mapping[str, float]
) -> tuple[pd.DataFrame, list[str], str | None]:
    """The reference with the output columns to compare (the override's decision column in
    place of the registered one), those columns, and why one was left out."""
    reference = reference.copy()
    compared: list[str] = []
    missing: list[str] = []
    if reference[SCORE_COLUMN].notna().any():
        compared.append(SCORE_COLUMN)
    else:
        missing.append(SCORE_COLUMN)
    if override:
        reference[DECISION_COLUMN] = decisions_with_shares(override, len(reference)).to_numpy()
        compared.append(DECISION_COLUMN)
    elif reference[DECISION_COLUMN].notna().any():
        compared.append(DECISION_COLUMN)
    else:
        missing.append(DECISION_COLUMN)
    why = f"no reference {' or '.join(missing)} registered with the model" if missing else None
    return reference, compared, why


def split_outputs(
    columns: list[ColumnDrift],
) -> tuple[list[ColumnDrift], list[ColumnDrift]]:
    """(features, outputs) of one Evidently run's columns."""
    outputs = [column for column in columns if column.name in OUTPUT_COLUMNS]
    return [column for column in columns if column.name not in OUTPUT_COLUMNS], outputs

"""The German Credit data shipped with the package (see data/README.md for its source)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from credit_api.features import CATEGORICAL, FEATURE_NAMES, NUMERICAL, TARGET


def load_german_credit() -> pd.DataFrame:
    """The 1000 applications: the 20 features (numbers as int64) and the `creditability` label."""
    source = resources.files("credit_api") / "data" / "germancredit.csv"
    with resources.as_file(source) as path:
        frame = pd.read_csv(path, dtype={name: "string" for name in (*CATEGORICAL, TARGET)})
    missing = set((*FEATURE_NAMES, TARGET)) - set(frame.columns)
    if missing:
        raise ValueError(f"germancredit.csv lacks columns {sorted(missing)}")
    frame = frame.loc[:, [*FEATURE_NAMES, TARGET]]
    for name in CATEGORICAL:
        frame[name] = frame[name].astype(object)
    frame[TARGET] = frame[TARGET].astype(object)
    for name in NUMERICAL:
        frame[name] = pd.to_numeric(frame[name])
    return frame

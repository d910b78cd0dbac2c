"""The drift job's configuration: validated once, from the CLI flags (docs/contracts.md).

Everything the job needs arrives here; a bad value is a `ConfigError` that names the flag, and
the CLI turns it into exit code 2 with one line, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from drift_job.fairness_config import FairnessConfig
from drift_job.stattests import METHOD_IDS, ColumnKind, find_stattest

OutputFormat = Literal["json", "text", "none"]
# The CRD's duration grammar: one positive integer and one unit (zero only where allowed).
_DURATION = re.compile(r"^([1-9][0-9]*)(s|m|h|d|w)$")
_DURATION_OR_ZERO = re.compile(r"^(0|[1-9][0-9]*)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

Threshold = Annotated[float, Field(gt=0, le=1_000)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class ConfigError(ValueError):
    """A configuration the job cannot run with; the message names the flag."""


def parse_duration(text: str, *, zero: bool = False) -> timedelta:
    match = (_DURATION_OR_ZERO if zero else _DURATION).match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 1h or 7d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class DriftJobConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    store_url: SecretStr
    model: Annotated[str, Field(min_length=1, max_length=128)]
    model_version: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    window: timedelta = timedelta(hours=1)
    min_rows: Annotated[int, Field(ge=0)] = 200
    # The current window is sampled uniformly in the database down to about this many rows.
    max_rows: Annotated[int, Field(ge=1)] = 50_000
    method: str = "auto"
    threshold: Threshold | None = None
    column_methods: dict[str, str] = Field(default_factory=dict)
    column_thresholds: dict[str, Threshold] = Field(default_factory=dict)
    drift_share: Fraction = 0.5
    numerical_columns: tuple[str, ...] | None = None
    categorical_columns: tuple[str, ...] | None = None
    report_dir: Path | None = None
    workspace: Path | None = None
    # The Evidently UI's base URL (scheme and host, at most a path prefix): status links there.
    ui_url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] | None = None
    keep_reports: Annotated[int, Field(ge=1, le=10_000)] = 20
    monitor: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    namespace: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    output: OutputFormat = "text"
    # The decision the score is the probability of; unset: the registered model's.
    positive_class: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    # The reference share of each decision; unset: the registered model's (from the store).
    reference_decision_shares: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict
    )
    # Quality from ground truth: predictions made in [end - label_delay - quality_window,
    # end - label_delay), joined to their recorded outcomes.
    quality: bool = False
    quality_window: timedelta = timedelta(days=1)
    label_delay: timedelta = timedelta(0)
    min_labelled: Annotated[int, Field(ge=1)] = 100
    fairness: FairnessConfig | None = None
    # Store connection attempts and the first back-off delay (doubled on each retry).
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    retry_delay_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("quality_window", mode="before")
    @classmethod
    def _quality_window(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("label_delay", mode="before")
    @classmethod
    def _label_delay(cls, value: object) -> object:
        return parse_duration(value, zero=True) if isinstance(value, str) else value

    @field_validator("fairness", mode="before")
    @classmethod
    def _fairness(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return FairnessConfig.model_validate_json(value)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"{where}: {message}" if where else message) from None

    @field_validator("reference_decision_shares")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        if value and abs(sum(value.values()) - 1) > 0.01:
            raise ValueError(f"the shares add up to {sum(value.values()):g}, not 1")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        return value if value == "auto" else _known_method(value)

    @field_validator("column_methods")
    @classmethod
    def _column_methods(cls, value: dict[str, str]) -> dict[str, str]:
        return {column: _known_method(method) for column, method in value.items()}

    @model_validator(mode="after")
    def _consistent(self) -> DriftJobConfig:
        if self.min_rows > self.max_rows:
            raise ValueError(f"min_rows ({self.min_rows}) is above max_rows ({self.max_rows})")
        if (self.monitor is None) != (self.namespace is None):
            raise ValueError("monitor and namespace go together")
        if self.ui_url is not None and self.workspace is None:
            raise ValueError("--ui-url links runs of a workspace: give --workspace too")
        both = set(self.numerical_columns or ()) & set(self.categorical_columns or ())
        if both:
            raise ValueError(f"columns listed as both numerical and categorical: {sorted(both)}")
        return self


def _known_method(name: str) -> str:
    if name not in METHOD_IDS:
        raise ValueError(f"unknown method {name!r}; use auto or one of {', '.join(METHOD_IDS)}")
    return name


def build_config(**values: object) -> DriftJobConfig:
    """Validate the flags; ConfigError names the first bad one as its flag."""
    try:
        return DriftJobConfig.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if not location:
            raise ConfigError(message) from None
        flag = "--" + location.split(".")[0].replace("_", "-")
        raise ConfigError(f"{flag}: {message}") from None


def select_columns(
    config: DriftJobConfig, registered: Sequence[tuple[str, ColumnKind]]
) -> list[tuple[str, ColumnKind]]:
    """The columns to compare and their kinds: the flags' lists, else every registered feature.

    Raises ConfigError for a column the model does not have, or a per-column method that cannot
    test a column of that kind (e.g. chisquare on a numerical column).
    """
    known = dict(registered)
    if config.numerical_columns is None and config.categorical_columns is None:
        selected = list(registered)
    else:
        selected = [(name, "numerical") for name in config.numerical_columns or ()]
        selected += [(name, "categorical") for name in config.categorical_columns or ()]
    flag_of = {name: "--numerical-columns" for name in config.numerical_columns or ()}
    flag_of |= {name: "--categorical-columns" for name in config.categorical_columns or ()}
    for name, _ in selected:
        if name not in known:
            raise ConfigError(
                f"{flag_of[name]}: model {config.model} has no feature {name!r} "
                f"(it has {', '.join(sorted(known))})"
            )
    kinds = dict(selected)
    for flag, names in (
        ("--column-method", config.column_methods),
        ("--column-threshold", config.column_thresholds),
    ):
        for name in names:
            if name not in kinds:
                raise ConfigError(f"{flag}: {name!r} is not one of the compared columns")
    for name, method in config.column_methods.items():
        if kinds[name] not in find_stattest(method).kinds:
            raise ConfigError(
                f"--column-method: {method} cannot test the {kinds[name]} column {name!r}"
            )
    if not selected:
        raise ConfigError("--numerical-columns/--categorical-columns: no columns to compare")
    return selected

"""Service settings, read from the environment with the prefix CREDIT_API_."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _user_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable)
    return (Path(base) if base else Path.home() / fallback) / "credit-api"


def default_model_dir() -> Path:
    return _user_dir("XDG_CACHE_HOME", ".cache") / "models"


def default_database_url() -> str:
    return f"sqlite:///{_user_dir('XDG_DATA_HOME', '.local/share') / 'predictions.db'}"


class Settings(BaseSettings):
    """Every setting, as `CREDIT_API_<NAME>` (`credit-api --help` lists them from here)."""

    model_config = SettingsConfigDict(env_prefix="CREDIT_API_", extra="ignore", frozen=True)

    host: str = Field(default="127.0.0.1", description="address `serve` listens on")
    port: int = Field(default=8000, ge=1, le=65535, description="port `serve` listens on")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="debug, info, warning or error"
    )
    access_log: bool = Field(default=False, description="uvicorn's per-request log lines")

    model_dir: Path = Field(
        default_factory=default_model_dir, description="where the model bundles are"
    )
    model_name: str = Field(default="credit-score", description="the model served and logged")
    model_version: str = Field(default="1", description="the bundle version served")
    train_if_missing: bool = Field(
        default=True,
        description="train the bundle into model_dir when it is missing (a fresh machine)",
    )

    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy URL of the prediction store (PostgreSQL or SQLite)",
    )
    prediction_log_enabled: bool = Field(
        default=True, description="log every prediction to the store"
    )
    metrics_enabled: bool = Field(
        default=True, description="count requests and predictions (/metrics is served either way)"
    )

    max_batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="most applications in one batch request"
    )
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="larger request bodies get a 413"
    )

    log_queue_size: int = Field(
        default=20_000,
        ge=1,
        description="records held while the store is slow or down; beyond, they are dropped"
        " and counted",
    )
    log_batch_size: int = Field(default=500, ge=1, description="most records in one insert")
    log_flush_interval_seconds: float = Field(
        default=0.2, gt=0, description="longest wait for a batch to fill before it is written"
    )
    log_retry_max_seconds: float = Field(
        default=5.0, gt=0, description="longest back-off between retries of a failed insert"
    )
    log_statement_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="PostgreSQL: a prediction-log insert waiting longer (on a lock) is retried"
        " and the store reported down",
    )
    log_shutdown_timeout_seconds: float = Field(
        default=10.0, ge=0, description="how long shutdown waits to write the queued records"
    )
    log_spool_dir: Path | None = Field(
        default=None,
        description="A local directory where the prediction log keeps batches while the store"
        " is down, and across restarts (credit_api.spool); unset: they wait in memory",
    )
    log_spool_max_bytes: ByteSize = Field(
        default=ByteSize(256 * 1024 * 1024),
        description="The spool's size cap (e.g. 268435456 or 256MiB); batches past it are"
        " dropped and counted",
    )
    feedback_flush_timeout_seconds: float = Field(
        default=2.0,
        ge=0,
        description="how long feedback waits for its prediction's record to be written",
    )


def describe_settings() -> str:
    """One line per setting: its variable, default and meaning (for `--help`)."""
    prefix = Settings.model_config.get("env_prefix", "")
    lines = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = str(default).lower() if isinstance(default, bool) else default
        lines.append(f"  {prefix}{name.upper()} (default: {shown})\n      {field.description}")
    return "\n".join(lines)

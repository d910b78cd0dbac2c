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
    model_config = SettingsConfigDict(env_prefix="CREDIT_API_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(default=False, description="uvicorn's per-request log lines")

    model_dir: Path = Field(default_factory=default_model_dir)
    model_name: str = "credit-score"
    model_version: str = "1"
    train_if_missing: bool = Field(
        default=True,
        description="Train the bundle into model_dir when it is missing (a fresh machine)",
    )

    database_url: str = Field(default_factory=default_database_url)
    prediction_log_enabled: bool = True
    metrics_enabled: bool = True

    max_batch_size: int = Field(default=1000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

    log_queue_size: int = Field(default=20_000, ge=1)
    log_batch_size: int = Field(default=500, ge=1)
    log_flush_interval_seconds: float = Field(default=0.2, gt=0)
    log_retry_max_seconds: float = Field(default=5.0, gt=0)
    log_statement_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="PostgreSQL: a prediction-log insert waiting longer (on a lock) is retried"
        " and the store reported down",
    )
    log_shutdown_timeout_seconds: float = Field(default=10.0, ge=0)
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
    feedback_flush_timeout_seconds: float = Field(default=2.0, ge=0)

"""What the service holds while it runs: the model, the store engine and the prediction log.

The lifespan starts it and stops it. Nothing here fails the start: a model that cannot be
loaded is retried in the background (readiness says so), and a store that is down is the
prediction log's business (it retries; readiness reports `degraded`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from credit_api.bundle import BundleError
from credit_api.config import Settings
from credit_api.metrics import Metrics
from credit_api.model_loading import LoadedModel, load_model
from credit_api.prediction_log import PredictionLogWriter, SpoolSettings
from credit_api.service import Predictor
from prediction_store import create_store_engine, register_model, upgrade

log = logging.getLogger(__name__)

MODEL_RETRY_MAX_SECONDS = 60.0
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5
# How long a start waits for the first attempt to migrate the store (a down store fails fast).
STORE_FIRST_ATTEMPT_WAIT_SECONDS = POSTGRES_CONNECT_TIMEOUT_SECONDS + 5


class Runtime:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.engine: sa.Engine | None = None
        self.writer: PredictionLogWriter | None = None
        self.predictor: Predictor | None = None
        self.model_error: str | None = None
        self._loader: asyncio.Task[None] | None = None

    @property
    def model(self) -> LoadedModel | None:
        return self.predictor.model if self.predictor is not None else None

    async def start(self) -> None:
        if self.settings.prediction_log_enabled:
            self.engine = store_engine(self.settings.database_url)
        if not await self._load_model_once():
            self._loader = asyncio.create_task(self._keep_loading_model(), name="model-loader")

    async def stop(self) -> None:
        if self._loader is not None:
            self._loader.cancel()
        if self.writer is not None:
            timeout = self.settings.log_shutdown_timeout_seconds
            await asyncio.to_thread(self.writer.stop, timeout)
        if self.engine is not None:
            self.engine.dispose()

    async def _load_model_once(self) -> bool:
        try:
            model = await asyncio.to_thread(load_model, self.settings)
        except Exception as error:  # a broken bundle must not crash-loop the pod
            self.model_error = f"{type(error).__name__}: {error}"
            self.metrics.model_load_attempts.labels("failure").inc()
            known = isinstance(error, FileNotFoundError | BundleError)
            log.error("cannot load the model (will retry): %s", error, exc_info=not known)
            return False
        self.metrics.model_load_attempts.labels("success").inc()
        self.model_error = None
        self.writer = self._start_writer(model)
        if self.writer is not None:
            wait = STORE_FIRST_ATTEMPT_WAIT_SECONDS
            if not await asyncio.to_thread(self.writer.wait_for_store, wait):
                log.warning("starting without the prediction store; the log keeps retrying")
        metrics = self.metrics if self.settings.metrics_enabled else None
        self.predictor = Predictor(model, metrics, self.writer)
        return True

    async def _keep_loading_model(self) -> None:
        delay = 1.0
        while not await self._load_model_once():
            await asyncio.sleep(delay)
            delay = min(delay * 2, MODEL_RETRY_MAX_SECONDS)

    def _start_writer(self, model: LoadedModel) -> PredictionLogWriter | None:
        if self.engine is None:
            return None
        reference = pd.DataFrame.from_records(list(model.bundle.reference))
        registration = model.bundle.registration(model.scorer.score_frame(reference).tolist())

        def prepare_store(engine: sa.Engine) -> None:
            upgrade(engine)
            if register_model(engine, registration):
                log.info("registered %s version %s in the store", model.name, model.version)

        s = self.settings
        writer = PredictionLogWriter(
            self.engine,
            setup=prepare_store,
            metrics=self.metrics if s.metrics_enabled else None,
            max_queue=s.log_queue_size,
            batch_size=s.log_batch_size,
            flush_interval=s.log_flush_interval_seconds,
            retry_max=s.log_retry_max_seconds,
            statement_timeout=s.log_statement_timeout_seconds,
            spool=SpoolSettings(s.log_spool_dir, int(s.log_spool_max_bytes))
            if s.log_spool_dir is not None
            else None,
        )
        writer.start()
        return writer


def store_engine(url: str) -> sa.Engine:
    """The store's engine; a SQLite file gets its directory, PostgreSQL a shorter connect
    timeout than the store's default (the URL's own wins)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return create_store_engine(url)
    return create_store_engine(
        url, connection_defaults={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
    )

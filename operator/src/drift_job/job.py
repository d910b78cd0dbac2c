"""One run of the drift job: read, compare, save the report; every ending is an Outcome.

Expected failures (too little data, an unreachable store, a missing reference, a bad column)
are outcomes with their exit code and a one-line message, so the status can say which.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from drift_job.config import ConfigError, DriftJobConfig, select_columns
from drift_job.exit_codes import ExitCode
from drift_job.normalise import (
    Rows,
    build_result,
    columns_from_snapshot,
    missing_columns,
)
from drift_job.reading import (
    ReferenceMissingError,
    StoreUnavailableError,
    load_model,
    read_reference,
    read_window,
)
from drift_job.reports import save_reports
from drift_job.sampling import comparison_rows
from drift_job.status import Outcome, Reason
from modelmonitor.reportsui import project_name, run_url
from prediction_store import FeatureSpec, create_store_engine

COMPUTE_MODULE = "drift_job.compute"

log = logging.getLogger("drift_job")
T = TypeVar("T")


def run_job(config: DriftJobConfig, *, now: Callable[[], datetime] | None = None) -> Outcome:
    """Run once; never raises for the failures the contract names."""
    clock = now or (lambda: datetime.now(UTC))
    try:
        engine = create_store_engine(config.store_url.get_secret_value())
    except (sa.exc.ArgumentError, ImportError, ValueError) as error:
        # The message never repeats the URL: it may hold a password.
        return _failed(
            clock(),
            "InvalidConfiguration",
            f"--store-url: not a database URL ({type(error).__name__})",
            ExitCode.BAD_CONFIG,
        )
    # Importing Evidently takes seconds of CPU; reading the window mostly waits on the store.
    threading.Thread(target=_import_quietly, args=(COMPUTE_MODULE,), daemon=True).start()
    try:
        return _compare(engine, config, clock)
    except ConfigError as error:
        return _failed(clock(), "InvalidConfiguration", str(error), ExitCode.BAD_CONFIG)
    except StoreUnavailableError as error:
        return _failed(
            clock(), "StoreUnavailable", f"store unavailable: {error}", ExitCode.STORE_OR_API
        )
    except ReferenceMissingError as error:
        return _failed(clock(), "ReferenceMissing", str(error), ExitCode.STORE_OR_API)
    except Exception as error:
        # Unexpected: the traceback goes to the log, the status still says the run failed.
        log.exception("drift run failed")
        return _failed(clock(), "Error", f"{type(error).__name__}: {error}", ExitCode.ERROR)
    finally:
        engine.dispose()


def _compare(engine: sa.Engine, config: DriftJobConfig, clock: Callable[[], datetime]) -> Outcome:
    model = _retrying(config, lambda: load_model(engine, config.model, config.model_version))
    columns = select_columns(config, [(spec.name, spec.kind) for spec in model.features])
    specs = [FeatureSpec(name, kind) for name, kind in columns]
    window_end = clock()
    window_start = window_end - config.window
    reading = time.monotonic()
    window = _retrying(
        config,
        lambda: read_window(
            engine,
            model,
            window_start,
            window_end,
            specs,
            max_rows=comparison_rows(config.max_rows, model.reference_rows),
        ),
    )
    needed = max(config.min_rows, 1)
    # A tiny sample fraction can draw no row at all from a large window: nothing to compare.
    if window.total_rows < needed or window.frame.empty:
        outcome = Outcome(
            result="InsufficientData",
            reason="InsufficientData",
            message=(
                f"{window.total_rows} predictions of {model.name} version {model.version} in "
                f"the last {_duration(config)}; at least {needed} needed"
            ),
            finished_at=clock(),
            exit_code=ExitCode.INSUFFICIENT_DATA,
            model_version=model.version,
            window_start=window_start,
            window_end=window_end,
            rows=Rows(model.reference_rows, window.total_rows, len(window.frame), window.sampled),
        )
        return _recorded(config, outcome, None)
    reference = _retrying(config, lambda: read_reference(engine, model, specs))
    log.info(
        "read %d of %d rows in the window and %d reference rows in %.1fs",
        len(window.frame),
        window.total_rows,
        len(reference),
        time.monotonic() - reading,
    )
    # Waits for the import started by run_job (a failed import raises here, as it would have).
    from drift_job.compute import comparable_columns, run_report  # noqa: PLC0415

    split = comparable_columns(reference, window.frame, columns)
    if not split.tested and not split.missing_in_current:
        raise ReferenceMissingError(
            f"the reference of {model.name} version {model.version} has no values "
            f"for {', '.join(split.missing_in_reference)}"
        )
    computing = time.monotonic()
    snapshot = run_report(reference, window.frame, split.tested, config) if split.tested else None
    log.info(
        "compared %d columns with Evidently in %.1fs",
        len(split.tested),
        time.monotonic() - computing,
    )
    compared = columns_from_snapshot(snapshot.dict()) if snapshot is not None else []
    rows = Rows(len(reference), window.total_rows, len(window.frame), window.sampled)
    result = build_result(
        model=model.name,
        model_version=model.version,
        window_start=window_start,
        window_end=window_end,
        rows=rows,
        columns=compared + missing_columns(split.missing_in_current),
        drift_share_threshold=config.drift_share,
    )
    message = result.summary()
    if split.missing_in_current:
        message += f"; no values in the window for {', '.join(split.missing_in_current)}"
    if split.missing_in_reference:
        message += (
            f"; not compared (no values in the reference): {', '.join(split.missing_in_reference)}"
        )
    finished_at = clock()
    reports = None
    if config.report_dir is not None and snapshot is not None:
        saving = time.monotonic()
        reports = save_reports(
            snapshot, config.report_dir, model.name, finished_at, config.keep_reports
        )
        log.info("saved %s and %s in %.1fs", reports.json, reports.html, time.monotonic() - saving)
    outcome = Outcome(
        result="Completed",
        reason="DatasetDrift" if result.dataset_drift else "NoDrift",
        message=message,
        finished_at=finished_at,
        exit_code=ExitCode.OK,
        drift=result,
        model_version=model.version,
        window_start=window_start,
        window_end=window_end,
        rows=rows,
        reports=reports,
    )
    return _recorded(config, outcome, snapshot)


def _recorded(config: DriftJobConfig, outcome: Outcome, snapshot: Any) -> Outcome:
    """The outcome, once its run is in the Evidently workspace (when there is one).

    A run without a drift report (too little data) is added all the same, with the window's
    row count as its report: the UI shows it as what it was, not as a gap.
    """
    if config.workspace is None:
        return outcome
    from drift_job.workspace import add_run, row_count_report, run_labels  # noqa: PLC0415

    if config.monitor is not None and config.namespace is not None:
        project = project_name(config.namespace, config.monitor)
        description = f"Drift runs of ModelMonitor {project} (model {config.model})"
    else:
        project = config.model
        description = f"Drift runs of model {config.model}"
    if snapshot is None:
        snapshot = row_count_report(outcome.rows.current if outcome.rows else 0)
    saving = time.monotonic()
    run = add_run(
        config.workspace,
        project,
        snapshot,
        description=description,
        labels=run_labels(
            outcome,
            model=config.model,
            window=_duration(config),
            monitor=project if config.monitor is not None else None,
        ),
        keep=config.keep_reports,
    )
    log.info(
        "added run %s to project %s (%s) in %.1fs",
        run.run,
        project,
        run.project,
        time.monotonic() - saving,
    )
    if config.ui_url is None:
        return outcome
    return dataclasses.replace(outcome, report_url=run_url(config.ui_url, run.project, run.run))


def _import_quietly(module: str) -> None:
    with contextlib.suppress(Exception):  # the import in _compare raises it again
        importlib.import_module(module)


def _retrying(config: DriftJobConfig, read: Callable[[], T]) -> T:
    """Retry a store read with exponential back-off; the last failure propagates."""
    attempts = config.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return read()
        except (StoreUnavailableError, ReferenceMissingError) as error:
            if attempt == attempts:
                raise
            delay = config.retry_delay_seconds * 2 ** (attempt - 1)
            log.warning("%s (attempt %d of %d); retrying in %.1fs", error, attempt, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


def _duration(config: DriftJobConfig) -> str:
    seconds = int(config.window.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _failed(finished_at: datetime, reason: Reason, message: str, exit_code: int) -> Outcome:
    return Outcome(
        result="Failed",
        reason=reason,
        message=message,
        finished_at=finished_at,
        exit_code=exit_code,
    )

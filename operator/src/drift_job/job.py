"""One run of the drift job: read, compare, save the report; every ending is an Outcome.

Expected failures (too little data, an unreachable store, a missing reference, a bad column)
are outcomes with their exit code and a one-line message, so the status can say which.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import sqlalchemy as sa

from drift_job.config import ConfigError, DriftJobConfig, select_columns
from drift_job.exit_codes import ExitCode
from drift_job.findings import FairnessResult, PredictionDrift, QualityOutcome
from drift_job.normalise import (
    DriftResult,
    Rows,
    build_result,
    columns_from_snapshot,
    missing_columns,
)
from drift_job.output_drift import output_reference, shares_of, split_outputs
from drift_job.reading import (
    ReferenceMissingError,
    StoreUnavailableError,
    load_model,
    read_labelled,
    read_reference,
    read_window,
)
from drift_job.reports import save_reports
from drift_job.sampling import comparison_rows
from drift_job.stattests import ColumnKind
from drift_job.status import Outcome, Reason
from modelmonitor.reportsui import project_name, run_url
from prediction_store import (
    DECISION_COLUMN,
    OUTCOME_COLUMN,
    OUTPUT_COLUMNS,
    SCORE_COLUMN,
    FeatureSpec,
    RegisteredModel,
    create_store_engine,
)

if TYPE_CHECKING:
    from drift_job.compute import ComparableColumns

# How Evidently compares the model's outputs: the score as a number, the decision as a class.
OUTPUT_KINDS: dict[str, ColumnKind] = {SCORE_COLUMN: "numerical", DECISION_COLUMN: "categorical"}

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
    attributes = attribute_specs(config, model)
    extra = [spec for spec in attributes if spec.name not in {s.name for s in specs}]
    check_output_names(model)
    reference_shares = dict(config.reference_decision_shares) or dict(model.decision_shares)
    window_end = clock()
    window_start = window_end - config.window
    quality = labelled = None
    if config.quality:
        quality, labelled = _judge_quality(engine, config, model, attributes, window_end)
    reading = time.monotonic()
    compared_rows = comparison_rows(config.max_rows, model.reference_rows)
    window = _retrying(
        config,
        lambda: read_window(
            engine,
            model,
            window_start,
            window_end,
            [*specs, *extra],
            # Fairness judges groups: it gets the larger sample, the drift a subsample of it.
            max_rows=config.max_rows if config.fairness is not None else compared_rows,
            outputs=True,
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
            reference_decision_shares=reference_shares,
            quality=quality,
        )
        return _recorded(config, outcome, None)
    current = window.frame
    if len(current) > compared_rows:
        current = current.sample(n=compared_rows).reset_index(drop=True)
    reference = _retrying(config, lambda: read_reference(engine, model, specs, outputs=True))
    log.info(
        "read %d of %d rows in the window and %d reference rows in %.1fs",
        len(window.frame),
        window.total_rows,
        len(reference),
        time.monotonic() - reading,
    )
    # Waits for the import started by run_job (a failed import raises here, as it would have).
    from drift_job.compute import comparable_columns, run_report  # noqa: PLC0415

    split = comparable_columns(reference, current, columns)
    if not split.tested and not split.missing_in_current:
        raise ReferenceMissingError(
            f"the reference of {model.name} version {model.version} has no values "
            f"for {', '.join(split.missing_in_reference)}"
        )
    reference, output_columns, not_compared = output_reference(
        reference, config.reference_decision_shares
    )
    output_kinds = [(name, OUTPUT_KINDS[name]) for name in output_columns]
    computing = time.monotonic()
    snapshot = (
        run_report(reference, current, split.tested, config, output_kinds) if split.tested else None
    )
    log.info(
        "compared %d columns with Evidently in %.1fs",
        len(split.tested) + len(output_kinds),
        time.monotonic() - computing,
    )
    every_column = columns_from_snapshot(snapshot.dict()) if snapshot is not None else []
    compared, outputs = split_outputs(every_column)
    rows = Rows(len(reference), window.total_rows, len(current), window.sampled)
    result = build_result(
        model=model.name,
        model_version=model.version,
        window_start=window_start,
        window_end=window_end,
        rows=rows,
        columns=compared + missing_columns(split.missing_in_current),
        drift_share_threshold=config.drift_share,
    )
    prediction = PredictionDrift(
        columns=tuple(sorted(outputs, key=lambda column: column.name)),
        decision_shares=shares_of(window.frame[DECISION_COLUMN]),
        not_compared=not_compared,
    )
    fairness = _judge_fairness(config, window.frame, labelled)
    message = _drift_message(result, split, prediction)
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
        prediction=prediction,
        reference_decision_shares=reference_shares,
        quality=quality,
        fairness=fairness,
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
    return replace(outcome, report_url=run_url(config.ui_url, run.project, run.run))


def _drift_message(
    result: DriftResult, split: ComparableColumns, prediction: PredictionDrift
) -> str:
    message = result.summary()
    if split.missing_in_current:
        message += f"; no values in the window for {', '.join(split.missing_in_current)}"
    if split.missing_in_reference:
        message += (
            f"; not compared (no values in the reference): {', '.join(split.missing_in_reference)}"
        )
    if prediction.drifted:
        message += f"; the model's output drifted: {', '.join(prediction.drifted_names)}"
    return message


def _judge_fairness(
    config: DriftJobConfig, window: pd.DataFrame, labelled: pd.DataFrame | None
) -> FairnessResult | None:
    if config.fairness is None:
        return None
    from drift_job.fairness import assess_fairness  # noqa: PLC0415

    judging = time.monotonic()
    fairness = assess_fairness(window, labelled, config.fairness)
    log.info("fairness of %d rows in %.1fs", len(window), time.monotonic() - judging)
    return fairness


def _judge_quality(
    engine: sa.Engine,
    config: DriftJobConfig,
    model: RegisteredModel,
    attributes: list[FeatureSpec],
    now: datetime,
) -> tuple[QualityOutcome, pd.DataFrame | None]:
    """The quality of the predictions whose outcomes had time to arrive, and those labelled
    predictions (the fairness' equal-opportunity gap reads them too)."""
    positive_class = config.positive_class or model.positive_class
    if positive_class is None:
        raise ConfigError(
            f"--positive-class: model {model.name} version {model.version} was registered "
            "without one; name it (spec.model.positiveClass)"
        )
    decisions = set(model.decision_shares) | set(config.reference_decision_shares)
    if decisions and positive_class not in decisions:
        raise ConfigError(
            f"--positive-class: {positive_class!r} is not a decision of {model.name} "
            f"({', '.join(sorted(decisions))})"
        )
    # A model registered without its threshold decides at 0.5, the usual probability cut.
    threshold = model.decision_threshold if model.decision_threshold is not None else 0.5
    end = now - config.label_delay
    start = end - config.quality_window
    reading = time.monotonic()
    window = _retrying(
        config,
        lambda: read_labelled(engine, model, start, end, attributes, max_rows=config.max_rows),
    )
    log.info(
        "read %d of %d labelled predictions (of %d) in %.1fs",
        len(window.frame),
        window.labelled,
        window.predictions,
        time.monotonic() - reading,
    )
    outcome = QualityOutcome(
        result="InsufficientLabels",
        message="",
        window_start=start,
        window_end=end,
        positive_class=positive_class,
        decision_threshold=threshold,
        predictions=window.predictions,
        labelled=window.labelled,
        sampled=window.sampled,
    )
    coverage = f"{window.labelled} of {window.predictions} predictions labelled"
    if window.labelled < config.min_labelled or window.frame.empty:
        message = f"{coverage}; at least {config.min_labelled} needed"
        return replace(outcome, message=message), window.frame
    from drift_job.quality import compute_quality  # noqa: PLC0415

    computing = time.monotonic()
    metrics = compute_quality(window.frame, positive_class, threshold)
    log.info(
        "quality of %d labelled predictions in %.1fs", metrics.rows, time.monotonic() - computing
    )
    auc = f"ROC AUC {metrics.roc_auc:.3f}" if metrics.roc_auc is not None else "one class only"
    message = f"{coverage}; {auc}, Brier score {metrics.brier_score:.3f}"
    return replace(outcome, result="Completed", message=message, metrics=metrics), window.frame


def attribute_specs(config: DriftJobConfig, model: RegisteredModel) -> list[FeatureSpec]:
    """The protected attributes the fairness reads, typed as the model registered them."""
    if config.fairness is None:
        return []
    kinds = {spec.name: spec.kind for spec in model.features}
    found = []
    for attribute in config.fairness.attributes:
        if attribute.feature not in kinds:
            raise ConfigError(
                f"--fairness: model {model.name} has no feature {attribute.feature!r}"
            )
        found.append(FeatureSpec(attribute.feature, kinds[attribute.feature]))
    return found


def check_output_names(model: RegisteredModel) -> None:
    taken = {spec.name for spec in model.features} & {*OUTPUT_COLUMNS, OUTCOME_COLUMN}
    if taken:
        raise ConfigError(
            f"--model: {model.name} has features named {', '.join(sorted(taken))}, the names of"
            " the model's output and outcome columns"
        )


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

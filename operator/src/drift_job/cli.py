"""`drift-job`: the command the CronJob runs (flags and exit codes in docs/contracts.md).

Compares the window's predictions with the model's registered reference sample (Evidently's
DataDriftPreset) and prints the verdict. Expected failures print one line on stderr and exit
with their own code (`--help` lists them); the result is printed either way, and the status of
the monitor (when --monitor is given) records every outcome it can.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TypeVar

from drift_job.config import ConfigError, DriftJobConfig, build_config
from drift_job.exit_codes import ExitCode, describe
from drift_job.findings import fairness_to_json, prediction_to_json, quality_to_json
from drift_job.normalise import result_to_json
from drift_job.status import Outcome, report_to_json

T = TypeVar("T")

# Outcomes that a status left unwritten turns into ExitCode.STORE_OR_API: the run did its part,
# but nobody will see it. A failure of the run itself keeps its own code.
_DONE = (ExitCode.OK, ExitCode.INSUFFICIENT_DATA)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not the usage block: the CronJob's log should say what is wrong.
        raise ConfigError(message)


def _pairs(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _share(text: str) -> tuple[str, float]:
    name, value = _pairs(text)
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="drift-job",
        description=__doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else None,
        epilog=f"exit codes:\n{describe()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    # Defaults are written into the help as %(default)s; the store URL's is not, since it may
    # carry a password from the environment.
    add(
        "--store-url",
        default=os.environ.get("DRIFT_STORE_URL"),
        help="SQLAlchemy URL of the prediction store (default: env DRIFT_STORE_URL)",
    )
    add("--model", required=True, help="registered model name")
    add("--model-version", help="registered version (default: the latest registered)")
    add(
        "--window",
        default="1h",
        help="compare predictions of this last period (default: %(default)s)",
    )
    add(
        "--min-rows",
        type=int,
        default=200,
        help="fewer rows in the window: InsufficientData (default: %(default)s)",
    )
    add(
        "--max-rows",
        type=int,
        default=50_000,
        help="sample the window uniformly in the database down to about this many rows"
        " (default: %(default)s)",
    )
    add(
        "--method",
        default="auto",
        help="auto (Evidently's choice per column) or a test: ks, psi, wasserstein, ..."
        " (default: %(default)s)",
    )
    add("--threshold", type=float, help="drift threshold for every column (default: per test)")
    add(
        "--column-method",
        type=_pairs,
        action="append",
        default=[],
        metavar="NAME=METHOD",
        help="the test for one column (repeatable)",
    )
    add(
        "--column-threshold",
        type=_pairs,
        action="append",
        default=[],
        metavar="NAME=T",
        help="the threshold for one column (repeatable)",
    )
    add(
        "--drift-share",
        type=float,
        default=0.5,
        help="dataset drift from this share of drifted columns (default: %(default)s)",
    )
    add("--numerical-columns", type=_names, help="comma list (default: the registered features)")
    add("--categorical-columns", type=_names, help="comma list (default: the registered features)")
    add("--report-dir", help="save JSON and HTML reports here (default: no reports)")
    add(
        "--workspace",
        help="add each run to this Evidently workspace, browsed with the Evidently UI; its"
        " parent must be writable, on the same volume (default: no workspace)",
    )
    add(
        "--ui-url",
        help="the Evidently UI that serves --workspace: the status links the run's page there"
        " (default: no link)",
    )
    add(
        "--keep-reports",
        type=int,
        default=20,
        help="keep this many runs' reports per model, and runs per workspace project"
        " (default: %(default)s)",
    )
    add(
        "--positive-class",
        help="the decision the score is the probability of (default: the registered model's)",
    )
    add(
        "--reference-decision-share",
        type=_share,
        action="append",
        default=[],
        metavar="DECISION=SHARE",
        help="the reference share of one decision, for the output drift and the decision-ratio"
        " alert (repeatable; default: the shares registered with the model)",
    )
    add(
        "--quality",
        action="store_true",
        help="also compute the model's quality from the recorded outcomes (feedback)",
    )
    add(
        "--quality-window",
        default="1d",
        help="judge the predictions of this period, ending --label-delay ago"
        " (default: %(default)s)",
    )
    add(
        "--label-delay",
        default="0s",
        help="how long outcomes take to arrive: younger predictions are not judged yet"
        " (default: %(default)s)",
    )
    add(
        "--min-labelled",
        type=int,
        default=100,
        help="fewer predictions with an outcome: InsufficientLabels (default: %(default)s)",
    )
    add(
        "--fairness",
        metavar="JSON",
        help="the protected attributes and their groups, as the ModelMonitor's spec.fairness"
        " (default: no fairness)",
    )
    add("--monitor", help="write the result into this ModelMonitor's status")
    add("--namespace", help="the ModelMonitor's namespace")
    add(
        "--output",
        choices=["json", "text", "none"],
        default="text",
        help="what to print (default: %(default)s)",
    )
    add(
        "--retries",
        type=int,
        default=3,
        help="store retries, with exponential back-off (default: %(default)s)",
    )
    add(
        "--retry-delay",
        type=float,
        default=1.0,
        help="first back-off delay in seconds (default: %(default)s)",
    )
    return parser


def parse_config(argv: Sequence[str] | None = None) -> DriftJobConfig:
    args = build_parser().parse_args(argv)
    if not args.store_url:
        raise ConfigError("--store-url: required (or set DRIFT_STORE_URL)")
    values: dict[str, Any] = {
        "store_url": args.store_url,
        "model": args.model,
        "model_version": args.model_version,
        "window": args.window,
        "min_rows": args.min_rows,
        "max_rows": args.max_rows,
        "method": args.method,
        "threshold": args.threshold,
        "column_methods": _unique(args.column_method, "--column-method"),
        "column_thresholds": _unique(args.column_threshold, "--column-threshold"),
        "drift_share": args.drift_share,
        "numerical_columns": args.numerical_columns,
        "categorical_columns": args.categorical_columns,
        "report_dir": args.report_dir,
        "workspace": args.workspace,
        "ui_url": args.ui_url,
        "keep_reports": args.keep_reports,
        "monitor": args.monitor,
        "namespace": args.namespace,
        "output": args.output,
        "positive_class": args.positive_class,
        "reference_decision_shares": _unique(
            args.reference_decision_share, "--reference-decision-share"
        ),
        "quality": args.quality,
        "quality_window": args.quality_window,
        "label_delay": args.label_delay,
        "min_labelled": args.min_labelled,
        "fairness": args.fairness,
        "retries": args.retries,
        "retry_delay_seconds": args.retry_delay,
    }
    return build_config(**values)


def _unique(pairs: list[tuple[str, T]], flag: str) -> dict[str, T]:
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{flag}: {', '.join(repeated)} given more than once")
    return dict(pairs)


def outcome_to_json(outcome: Outcome) -> dict[str, Any]:
    document: dict[str, Any] = {
        "result": outcome.result,
        "reason": outcome.reason,
        "message": outcome.message,
    }
    if outcome.drift is not None:
        document |= result_to_json(outcome.drift)
    if outcome.prediction is not None:
        document["prediction"] = prediction_to_json(outcome.prediction)
    if outcome.reference_decision_shares:
        document["referenceDecisionShares"] = dict(outcome.reference_decision_shares)
    if outcome.quality is not None:
        document["quality"] = quality_to_json(outcome.quality)
    if outcome.fairness is not None:
        document["fairness"] = fairness_to_json(outcome.fairness)
    report = report_to_json(outcome)
    if report:
        document["report"] = report
    return document


def main(argv: Sequence[str] | None = None) -> int:
    # Only the job's own logger speaks at INFO; libraries (alembic, Evidently) stay at WARNING.
    logger = logging.getLogger("drift_job")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("drift-job: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return _run(argv)
    finally:
        logger.removeHandler(handler)


def _run(argv: Sequence[str] | None) -> int:
    # Evidently's telemetry is only wired into its UI service; this keeps it off regardless.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        config = parse_config(argv)
    except ConfigError as error:
        print(f"drift-job: bad configuration: {error}", file=sys.stderr)
        return ExitCode.BAD_CONFIG
    # Imported after the flags are checked: a typo answers at once, without loading Evidently.
    from drift_job.job import run_job  # noqa: PLC0415

    outcome = run_job(config)
    exit_code = outcome.exit_code
    if config.monitor is not None and config.namespace is not None:
        from drift_job.kube import StatusWriteError, write_status  # noqa: PLC0415

        try:
            write_status(config.monitor, config.namespace, outcome)
        except StatusWriteError as error:
            print(f"drift-job: {error}", file=sys.stderr)
            if exit_code in _DONE:
                exit_code = ExitCode.STORE_OR_API
        else:
            # The monitor's status says InsufficientData; as the CronJob runs it, a Job that
            # failed for a quiet hour would count as a failed run (ModelDriftJobFailed).
            if exit_code == ExitCode.INSUFFICIENT_DATA:
                exit_code = ExitCode.OK
    _print(config, outcome)
    return exit_code


def _print(config: DriftJobConfig, outcome: Outcome) -> None:
    if config.output == "json":
        print(json.dumps(outcome_to_json(outcome), indent=2))
    elif config.output == "text" and outcome.result == "Completed":
        drifted = outcome.drift.drifted_names if outcome.drift else []
        print(f"{outcome.message}" + (f"; drifted: {', '.join(drifted)}" if drifted else ""))
    if config.output == "text" and outcome.quality is not None:
        print(f"quality: {outcome.quality.result}: {outcome.quality.message}")
    if config.output == "text" and outcome.fairness is not None:
        print(f"fairness: {outcome.fairness.summary()}")
    if outcome.result != "Completed":
        print(f"drift-job: {outcome.reason}: {outcome.message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

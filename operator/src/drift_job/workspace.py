"""The Evidently workspace on the report volume: every run of a monitor, for the Evidently UI.

The layout is Evidently 0.7's local workspace, what its UI reads (`reports-ui`, or `evidently
ui --workspace`):

    <workspace>/<project id>/metadata.json         the project (one per monitor)
    <workspace>/<project id>/dashboard.json        its panels over the runs (drift share, scores)
    <workspace>/<project id>/snapshots/<run>.json  one run's report (run ids are UUID 7: by time)

and next to it, on the same volume, `<workspace>.staging/`: files being written, and a lock
file per project.

Two monitors' jobs may write the same workspace at once. They write different project
directories, and Evidently keeps no index across projects, so they never touch the same file.
Two runs of one monitor (a Job created by hand next to a scheduled one) take the project's lock
(a POSIX record lock: NFS clients honour it too) around add-and-prune. Every file appears
complete, renamed from the staging directory: the UI never parses half a run. The staging
directory is outside the workspace on purpose: the UI's file watcher sees a rename within the
workspace as a move of the staging file and ignores it, one from outside as a new file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.legacy.core import new_id
from evidently.legacy.utils import NumpyEncoder
from evidently.metrics import RowCount
from evidently.sdk.models import DashboardModel, PanelMetric, ProjectModel
from evidently.sdk.panels import counter_panel, line_plot_panel
from evidently.ui.storage.local.base import (
    DASHBOARD_FILE_NAME,
    PROJECT_FILE_NAME,
    SNAPSHOTS_DIR_NAME,
)

from drift_job.normalise import DRIFTED_COLUMNS_TYPE, VALUE_DRIFT_TYPE, rfc3339
from drift_job.status import Outcome
from modelmonitor.reportsui import project_id

_JSON = ".json"


@dataclass(frozen=True)
class WorkspaceRun:
    """Where one run went: its project and its id (the UI's page is reportsui.run_url)."""

    project: uuid.UUID
    run: uuid.UUID


@dataclass(frozen=True)
class RunLabels:
    """What the run is shown with in the UI: a name, tags to filter by, metadata, a time."""

    name: str
    tags: tuple[str, ...]
    metadata: Mapping[str, str]
    timestamp: datetime


def run_labels(outcome: Outcome, *, model: str, window: str, monitor: str | None) -> RunLabels:
    """The outcome's verdict as the run's name, its reason, model version and window as tags;
    the quality and fairness the same run judged, if any, in its metadata (the report itself is
    the drift's, the model's output included)."""
    tags: list[str] = [outcome.reason]
    metadata = {
        "result": outcome.result,
        "reason": outcome.reason,
        "model": model,
        "window": window,
    }
    if monitor is not None:
        metadata["monitor"] = monitor
    if outcome.model_version is not None:
        tags.append(f"model_version={outcome.model_version}")
        metadata["model_version"] = outcome.model_version
    tags.append(f"window={window}")
    if outcome.window_start is not None and outcome.window_end is not None:
        metadata["window_start"] = rfc3339(outcome.window_start)
        metadata["window_end"] = rfc3339(outcome.window_end)
    if outcome.quality is not None:
        metadata["quality"] = f"{outcome.quality.result}: {outcome.quality.message}"
    if outcome.fairness is not None:
        metadata["fairness"] = outcome.fairness.summary()
    return RunLabels(
        name=f"{outcome.reason}: {outcome.message}",
        tags=tuple(tags),
        metadata=metadata,
        # Evidently compares run times without a zone (its own are naive): UTC, made naive.
        timestamp=outcome.finished_at.astimezone(UTC).replace(tzinfo=None),
    )


def row_count_report(rows: int) -> Any:
    """A report of the window's row count alone: what a run with too little data shows."""
    frame = pd.DataFrame(index=pd.RangeIndex(rows))
    return Report([RowCount()]).run(
        Dataset.from_pandas(frame, data_definition=DataDefinition()), None
    )


def add_run(
    workspace: Path, project: str, snapshot: Any, *, description: str, labels: RunLabels, keep: int
) -> WorkspaceRun:
    """Add an Evidently snapshot as a run of `project`, then drop its runs beyond the newest keep.

    `snapshot` is what `Report.run` returns. The project is created on its first run.
    """
    model = snapshot.to_snapshot_model().copy(
        update={
            "name": labels.name,
            "tags": list(labels.tags),
            "metadata": dict(labels.metadata),
            "timestamp": labels.timestamp,
        }
    )
    identifier = project_id(project)
    run = new_id()
    staging = staging_dir(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    with _project_lock(staging, identifier):
        _remove_leftovers(staging, identifier)
        _ensure_project(
            workspace, staging, ProjectModel(id=identifier, name=project, description=description)
        )
        snapshots = workspace / str(identifier) / SNAPSHOTS_DIR_NAME
        snapshots.mkdir(exist_ok=True)
        _publish(staging, identifier, snapshots / f"{run}{_JSON}", model.dict())
        prune_runs(workspace, identifier, keep)
    return WorkspaceRun(identifier, run)


def project_dashboard() -> DashboardModel:
    """The project's page: the last verdict, and the drift share and column scores run by run."""
    share = PanelMetric(
        legend="share", metric=DRIFTED_COLUMNS_TYPE, metric_labels={"value_type": "share"}
    )
    count = PanelMetric(
        legend="columns", metric=DRIFTED_COLUMNS_TYPE, metric_labels={"value_type": "count"}
    )
    return DashboardModel(
        tabs=[],
        panels=[
            counter_panel("Share of drifted columns (last run)", [share], size="half"),
            counter_panel("Drifted columns (last run)", [count], size="half"),
            line_plot_panel("Share of drifted columns, run by run", [share]),
            line_plot_panel(
                "Drift score per column (p-value or distance, per its test)",
                [PanelMetric(legend="{{column}}", metric=VALUE_DRIFT_TYPE)],
            ),
        ],
    )


def staging_dir(workspace: Path) -> Path:
    """Where files are written before they appear in the workspace: beside it, same volume."""
    return workspace.with_name(f"{workspace.name}.staging")


def list_runs(workspace: Path, project: uuid.UUID) -> list[uuid.UUID]:
    """The project's runs, oldest first (UUID 7 ids sort by their creation time)."""
    snapshots = workspace / str(project) / SNAPSHOTS_DIR_NAME
    if not snapshots.is_dir():
        return []
    runs = []
    for path in snapshots.iterdir():
        if path.suffix == _JSON:
            with contextlib.suppress(ValueError):
                runs.append(uuid.UUID(path.stem))
    return sorted(runs)


def prune_runs(workspace: Path, project: uuid.UUID, keep: int) -> list[uuid.UUID]:
    """Remove all but the newest `keep` runs of the project; returns the removed runs."""
    runs = list_runs(workspace, project)
    removed = runs[: max(0, len(runs) - keep)]
    snapshots = workspace / str(project) / SNAPSHOTS_DIR_NAME
    for run in removed:
        (snapshots / f"{run}{_JSON}").unlink(missing_ok=True)
    return removed


@contextlib.contextmanager
def _project_lock(staging: Path, project: uuid.UUID) -> Iterator[None]:
    with (staging / f"{project}.lock").open("a") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def _remove_leftovers(staging: Path, project: uuid.UUID) -> None:
    """Partial files of this project from a run killed while writing (the lock is held)."""
    for path in staging.glob(f"{project}.*.partial"):
        _remove(path)


def _ensure_project(workspace: Path, staging: Path, project: ProjectModel) -> None:
    """Create the project on its first run: the directory appears with its metadata in it."""
    directory = workspace / str(project.id)
    if (directory / PROJECT_FILE_NAME).exists():
        return
    document = project.dict()
    if directory.exists():  # a project directory without metadata (a partial copy, say)
        _publish(staging, project.id, directory / PROJECT_FILE_NAME, document)
        return
    partial = staging / f"{project.id}.{uuid.uuid4().hex}.partial"
    try:
        (partial / SNAPSHOTS_DIR_NAME).mkdir(parents=True)
        _write_synced(partial / DASHBOARD_FILE_NAME, project_dashboard().dict())
        _write_synced(partial / PROJECT_FILE_NAME, document)
        partial.rename(directory)
    finally:
        _remove(partial)


def _publish(staging: Path, project: uuid.UUID, target: Path, document: Mapping[str, Any]) -> None:
    """Write the JSON document under the staging directory, then rename it to `target`."""
    partial = staging / f"{project}.{uuid.uuid4().hex}.partial"
    try:
        _write_synced(partial, document)
        os.replace(partial, target)
    finally:
        _remove(partial)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _write_synced(path: Path, document: Mapping[str, Any]) -> None:
    with path.open("w") as file:
        # Evidently's own encoder: numpy numbers and arrays in the metric results.
        json.dump(document, file, cls=NumpyEncoder)
        file.flush()
        os.fsync(file.fileno())

"""The Evidently workspace: runs land in their project, the newest N stay, writers never collide.

Everything written is read back with Evidently's own local `Workspace`, the API its UI serves
from: what passes here is what the UI shows.
"""

from __future__ import annotations

import json
import multiprocessing
import uuid
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evidently.ui.workspace import Workspace

from drift_job.cli import main
from drift_job.normalise import Rows
from drift_job.status import Outcome
from drift_job.workspace import (
    RunLabels,
    add_run,
    list_runs,
    row_count_report,
    run_labels,
    staging_dir,
)
from modelmonitor.reportsui import project_id, project_name

from .conftest import MODEL, Store

UI = "http://reports.example"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _run(store: Store, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Any]:
    code = main(["--store-url", store.url, "--model", MODEL, "--output", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def _run_id(url: str) -> uuid.UUID:
    project, run = url.removeprefix(f"{UI}/projects/").split("/reports/")
    assert uuid.UUID(project) == project_id(MODEL)
    return uuid.UUID(run)


def _keep(name: str, keep: int) -> dict[str, Any]:
    """add_run's labels (a run named `name`) and retention."""
    labels = RunLabels(name=name, tags=("NoDrift",), metadata={"model": MODEL}, timestamp=T0)
    return {"labels": labels, "keep": keep}


def test_only_the_newest_runs_stay_and_too_little_data_shows_as_such(
    sqlite_store: Store,
    german_credit: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """keep 3, five runs (the third with too little data): the last three are left."""
    mask = np.random.default_rng(7).random(len(german_credit)) < 0.5
    sqlite_store.register(german_credit[mask])
    sqlite_store.add_predictions(german_credit[~mask])
    rows = int((~mask).sum())
    workspace = tmp_path / "reports" / "workspace"
    flags = ["--workspace", str(workspace), "--ui-url", UI, "--keep-reports", "3"]
    runs: list[uuid.UUID] = []
    for number in range(5):
        too_little = ["--min-rows", str(rows + 1)] if number == 2 else []
        code, document = _run(sqlite_store, capsys, *flags, *too_little)
        assert code == (3 if too_little else 0)
        assert document["result"] == ("InsufficientData" if too_little else "Completed")
        runs.append(_run_id(document["report"]["url"]))

    evidently = Workspace(str(workspace))
    project = evidently.get_project(project_id(MODEL))
    assert project is not None
    assert project.name == MODEL
    assert sorted(evidently.list_runs(project.id)) == sorted(runs[2:])
    assert list_runs(workspace, project.id) == runs[2:]  # oldest first

    insufficient = evidently.get_run(project.id, runs[2])
    assert insufficient is not None
    assert insufficient.tags == ["InsufficientData", "model_version=1", "window=1h"]
    assert insufficient.metadata["result"] == "InsufficientData"
    assert insufficient.name is not None
    assert insufficient.name.startswith(f"InsufficientData: {rows} predictions of credit-score")
    # Its report is the window's row count.
    assert [result.value for result in insufficient.metric_results.values()] == [rows]

    completed = evidently.get_run(project.id, runs[4])
    assert completed is not None
    assert completed.tags[0] in {"NoDrift", "DatasetDrift"}
    assert completed.tags[1:] == ["model_version=1", "window=1h"]
    assert completed.metadata["model"] == MODEL
    assert completed.metadata["window_end"].endswith("Z")
    assert len(completed.widgets) > 0  # the drift report's own widgets, as the UI draws them
    # Nothing is left half-written beside the workspace: the project's lock file only.
    assert [p.name for p in staging_dir(workspace).iterdir()] == [f"{project.id}.lock"]


def test_a_monitor_has_a_project_of_its_own(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    name = project_name("credit", "credit-score")
    run = add_run(
        workspace, name, row_count_report(3), description="the monitor's runs", **_keep("a", 5)
    )
    assert run.project == project_id("credit/credit-score")
    evidently = Workspace(str(workspace))
    project = evidently.get_project(run.project)
    assert project is not None
    assert (project.name, project.description) == ("credit/credit-score", "the monitor's runs")
    # Its page: panels over the runs, read back through Evidently's dashboard API.
    panels = evidently.get_dashboard(run.project).panels
    assert [panel.title for panel in panels] == [
        "Share of drifted columns (last run)",
        "Drifted columns (last run)",
        "Share of drifted columns, run by run",
        "Drift score per column (p-value or distance, per its test)",
    ]


def test_the_ui_url_needs_a_workspace_and_a_web_address(
    sqlite_store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--store-url", sqlite_store.url, "--model", MODEL, "--ui-url", UI]) == 2
    assert "give --workspace too" in capsys.readouterr().err
    flags = ["--workspace", str(tmp_path), "--ui-url", "reports.example"]
    assert main(["--store-url", sqlite_store.url, "--model", MODEL, *flags]) == 2
    assert "--ui-url: String should match pattern" in capsys.readouterr().err


def test_a_partial_file_left_by_a_killed_run_goes_with_the_next_run_of_its_project(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "workspace"
    first = add_run(workspace, "a/one", row_count_report(1), description="", **_keep("first", 5))
    staging = staging_dir(workspace)
    killed = staging / f"{first.project}.{uuid.uuid4().hex}.partial"
    killed.write_text('{"half": ')
    other = staging / f"{project_id('b/two')}.{uuid.uuid4().hex}.partial"
    other.write_text('{"being written by another monitor\'s job": ')
    add_run(workspace, "a/one", row_count_report(2), description="", **_keep("second", 5))
    assert not killed.exists()
    assert other.exists()  # another project's file: its own job may be writing it right now


def _add_when_all_are_ready(
    workspace: str, project: str, barrier: Barrier, results: Any, number: int
) -> None:
    snapshot = row_count_report(number)
    barrier.wait()
    run = add_run(Path(workspace), project, snapshot, description="", **_keep(str(number), 100))
    results.put((project, str(run.run)))


def test_jobs_of_two_monitors_and_two_runs_of_each_write_one_workspace_at_once(
    tmp_path: Path,
) -> None:
    """Six writers released together, all on first runs: every run lands, every file parses."""
    workspace = tmp_path / "workspace"
    projects = ["credit/credit-score", "credit/fraud", "credit/credit-score", "credit/fraud"] * 2
    # Forked: the children share the parent's imported Evidently instead of importing it anew.
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(projects))
    results = context.Queue()
    processes = [
        context.Process(
            target=_add_when_all_are_ready,
            args=(str(workspace), project, barrier, results, number),
        )
        for number, project in enumerate(projects)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * len(processes)
    landed = [results.get(timeout=10) for _ in processes]

    evidently = Workspace(str(workspace))
    names = sorted(project.name for project in evidently.list_projects())
    assert names == ["credit/credit-score", "credit/fraud"]
    for name in ("credit/credit-score", "credit/fraud"):
        identifier = project_id(name)
        expected = sorted(uuid.UUID(run) for project, run in landed if project == name)
        assert sorted(evidently.list_runs(identifier)) == expected
        assert len(expected) == projects.count(name)
        for run in expected:
            model = evidently.get_run(identifier, run)
            assert model is not None
            assert [result.value for result in model.metric_results.values()] == [
                int(model.name or "")
            ]
    assert sorted(p.suffix for p in staging_dir(workspace).iterdir()) == [".lock", ".lock"]


def test_run_labels_carry_the_verdict_the_version_and_the_window() -> None:
    outcome = Outcome(
        result="InsufficientData",
        reason="InsufficientData",
        message="12 predictions of credit-score version 3 in the last 1h; at least 200 needed",
        finished_at=datetime(2026, 1, 1, 13, 0, 5, tzinfo=UTC),
        exit_code=3,
        model_version="3",
        window_start=T0,
        window_end=datetime(2026, 1, 1, 13, 0, tzinfo=UTC),
        rows=Rows(1000, 12, 12, False),
    )
    labels = run_labels(outcome, model="credit-score", window="1h", monitor="credit/score")
    assert labels.name == f"InsufficientData: {outcome.message}"
    assert labels.tags == ("InsufficientData", "model_version=3", "window=1h")
    assert labels.metadata == {
        "result": "InsufficientData",
        "reason": "InsufficientData",
        "model": "credit-score",
        "window": "1h",
        "monitor": "credit/score",
        "model_version": "3",
        "window_start": "2026-01-01T12:00:00Z",
        "window_end": "2026-01-01T13:00:00Z",
    }
    assert labels.timestamp == datetime(2026, 1, 1, 13, 0, 5)  # Evidently's naive UTC

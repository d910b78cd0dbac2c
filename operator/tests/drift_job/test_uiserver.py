"""`reports-ui`, the real Evidently UI over a workspace the drift job wrote, on loopback.

It serves every project and run, follows runs added and removed while it runs (by change
notifications and by polling), starts from a read-only mount, and its pages render offline in
headless Chromium with the run's verdicts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from drift_job.compute import run_report
from drift_job.config import build_config
from drift_job.normalise import columns_from_snapshot
from drift_job.uiserver import main
from drift_job.workspace import RunLabels, add_run, row_count_report, staging_dir
from localservers.browser import chromium, drift_table_rows, visible_text
from localservers.ports import free_port
from localservers.process import ServerProcess
from localservers.pytest_plugin import require_binary
from modelmonitor.reportsui import project_id, project_url, run_url, runs_url

from .conftest import feature_specs

PROJECT = "credit/credit-score"
T0 = datetime(2026, 1, 1, 12, 0)  # naive UTC, as Evidently keeps run times


def _labels(name: str, *tags: str, at: datetime = T0) -> dict[str, Any]:
    labels = RunLabels(name=name, tags=tags, metadata={"model": "credit-score"}, timestamp=at)
    return {"description": "drift runs", "labels": labels}


class ReportsUi:
    """`reports-ui` on a free loopback port; `wrap` runs it under another command."""

    def __init__(
        self, workspace: Path, log: Path, *options: str, wrap: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(Path(sys.executable).parent / "reports-ui"),
            "--workspace",
            str(workspace),
            "--port",
            str(self.port),
            *options,
        ]
        self.process = ServerProcess([*wrap, *command], log)

    def __enter__(self) -> ReportsUi:
        self.process.start()
        self.process.wait_until(
            lambda: httpx.get(f"{self.url}/api/version", timeout=2).status_code == 200,
            90,
            "reports-ui",
        )
        return self

    def __exit__(self, *_: object) -> None:
        self.process.stop()

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def runs(self, project: str = PROJECT) -> list[str]:
        """The project's run ids; none while the UI does not know the project."""
        path = f"/api/projects/{project_id(project)}/snapshots"
        response = httpx.get(f"{self.url}{path}", timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [run["id"] for run in response.json()]


def _until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "reports" / "workspace"
    add_run(path, PROJECT, row_count_report(7), keep=5, **_labels("first", "NoDrift"))
    return path


@pytest.mark.parametrize("watching", [[], ["--poll-seconds", "0.5"]], ids=["notified", "polled"])
def test_the_ui_serves_the_runs_and_follows_new_and_removed_ones(
    workspace: Path, tmp_path: Path, watching: list[str]
) -> None:
    with ReportsUi(workspace, tmp_path / "ui.log", *watching) as ui:
        (project,) = ui.get("/api/projects")
        assert (project["id"], project["name"]) == (str(project_id(PROJECT)), PROJECT)
        (first,) = ui.get(f"/api/projects/{project['id']}/snapshots")
        assert (first["name"], first["tags"]) == ("first", ["NoDrift"])

        second = add_run(workspace, PROJECT, row_count_report(8), keep=1, **_labels("second"))
        _until(lambda: ui.runs() == [str(second.run)], "the UI did not follow the new run")
        # A monitor's first run while the UI runs: a new project appears.
        other = add_run(workspace, "credit/other", row_count_report(9), keep=1, **_labels("x"))
        _until(
            lambda: ui.runs("credit/other") == [str(other.run)], "the new project did not appear"
        )
        # A writable workspace takes a new project through the API (the read-only one refuses).
        created = httpx.post(f"{ui.url}/api/projects", json={"name": "written"}, timeout=10)
        assert created.is_success
    log = (tmp_path / "ui.log").read_text()
    assert ("scanning it every 0.5s" in log) is bool(watching)


def test_the_ui_runs_from_a_read_only_mount_and_cannot_write(
    workspace: Path, tmp_path: Path
) -> None:
    """As in the chart: the volume mounted read-only (a bind mount in a mount namespace here)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind {tmp_path} {mount}"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("needs mount namespaces (root or CAP_SYS_ADMIN) to mount read-only")
    script = (
        f'mount --bind {workspace.parent} {mount} && mount -o remount,bind,ro {mount} && exec "$@"'
    )
    wrap = ("unshare", "-m", "sh", "-c", script, "sh")
    read_only = mount / workspace.name
    with ReportsUi(read_only, tmp_path / "ui.log", "--poll-seconds", "0.5", wrap=wrap) as ui:
        assert len(ui.runs()) == 1
        # The request a writable workspace accepts (see above) fails: the mount is read-only.
        refused = httpx.post(f"{ui.url}/api/projects", json={"name": "written"}, timeout=10)
        assert refused.status_code == 500
        # The drift job writes through its own (read-write) mount; the UI sees the run.
        run = add_run(workspace, PROJECT, row_count_report(3), keep=5, **_labels("later"))
        _until(lambda: str(run.run) in ui.runs(), "the UI did not see the job's run")
    assert not any(path.name == "written" for path in workspace.rglob("*"))


def test_prepare_creates_the_workspace_and_a_missing_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / "reports" / "workspace"
    assert main(["--workspace", str(workspace)]) == 2
    assert "is not a directory; create it with --prepare" in capsys.readouterr().err
    assert main(["--workspace", str(workspace), "--prepare"]) == 0
    assert workspace.is_dir()
    assert staging_dir(workspace).is_dir()
    assert main(["--workspace", str(workspace), "--prepare"]) == 0  # again: nothing to do


@pytest.fixture(scope="module")
def drift_snapshot(german_credit: pd.DataFrame) -> Any:
    columns = [(spec.name, spec.kind) for spec in feature_specs(german_credit)]
    younger = german_credit[german_credit.age_in_years < 40]
    older = german_credit[german_credit.age_in_years >= 40]
    return run_report(younger, older, columns, build_config(store_url="sqlite://", model="m"))


@pytest.fixture
def browser_profile(tmp_path: Path) -> Iterator[Path]:
    require_binary("chromium")
    profile = tmp_path / "chromium"
    yield profile
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.browser
@pytest.mark.slow
def test_a_runs_page_shows_its_drifted_columns_and_the_list_its_verdicts(
    drift_snapshot: Any, tmp_path: Path, browser_profile: Path
) -> None:
    found = {c.name: c for c in columns_from_snapshot(drift_snapshot.dict())}
    drifted = sum(c.drifted for c in found.values())
    workspace = tmp_path / "workspace"
    insufficient = add_run(
        workspace,
        PROJECT,
        row_count_report(12),
        keep=5,
        **_labels("InsufficientData: 12 predictions; at least 200 needed", "InsufficientData"),
    )
    run = add_run(
        workspace,
        PROJECT,
        drift_snapshot,
        keep=5,
        **_labels(
            f"DatasetDrift: {drifted} of {len(found)} columns drifted",
            "DatasetDrift",
            at=T0 + timedelta(minutes=15),
        ),
    )
    assert insufficient.project == run.project
    with ReportsUi(workspace, tmp_path / "ui.log") as ui:
        page = chromium(run_url(ui.url, run.project, run.run), browser_profile, "--dump-dom")
        text = visible_text(page.stdout)
        assert f"{PROJECT} / Reports / {run.run}" in text
        assert "Dataset Drift is detected" in text
        assert (
            f"Drift is detected for {100 * drifted / len(found):.1f}% of columns "
            f"({drifted} out of {len(found)})"
        ) in text
        rows = drift_table_rows(text)
        assert len(rows) == 10  # the table's first page
        for row in rows:
            assert row.drifted is found[row.column].drifted, row.column
            assert row.stattest == found[row.column].stattest

        # The project's page: the last run's verdict in its counters.
        dashboard = visible_text(
            chromium(project_url(ui.url, run.project), browser_profile, "--dump-dom").stdout
        )
        assert f"Share of drifted columns (last run) {drifted / len(found):.2f}" in dashboard
        assert f"Drifted columns (last run) {drifted} columns" in dashboard

        listing = visible_text(
            chromium(runs_url(ui.url, run.project), browser_profile, "--dump-dom").stdout
        )
        # Newest first; the run with too little data is there, named and tagged as such.
        newest = listing.index(f"DatasetDrift: {drifted} of {len(found)} columns drifted")
        older = listing.index("InsufficientData: 12 predictions; at least 200 needed")
        assert newest < older
        assert f"{insufficient.run} InsufficientData" in listing

"""The report store: JSON and HTML per run, named by time, the newest N kept, offline HTML."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from drift_job.compute import run_report
from drift_job.config import build_config
from drift_job.reports import prune_reports, report_stem, save_reports

from .conftest import feature_specs

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def snapshot(german_credit: pd.DataFrame) -> Any:
    columns = [(spec.name, spec.kind) for spec in feature_specs(german_credit)]
    younger = german_credit[german_credit.age_in_years < 40]
    older = german_credit[german_credit.age_in_years >= 40]
    config = build_config(store_url="sqlite://", model="credit-score")
    return run_report(younger, older, columns, config)


def test_reports_are_named_by_time_and_hold_the_snapshot(snapshot: Any, tmp_path: Path) -> None:
    files = save_reports(snapshot, tmp_path / "reports", "credit-score", T0, keep=5)
    assert files.json.name == "drift-credit-score-20260101T120000Z.json"
    assert files.html.name == "drift-credit-score-20260101T120000Z.html"
    saved = json.loads(files.json.read_text())
    assert any(m["config"]["type"].endswith("ValueDrift") for m in saved["metrics"])
    assert sorted(p.name for p in files.json.parent.iterdir()) == [files.html.name, files.json.name]


def test_only_the_newest_runs_of_a_model_are_kept(snapshot: Any, tmp_path: Path) -> None:
    other = tmp_path / "drift-other-model-20250101T000000Z.json"
    unrelated = tmp_path / "notes.txt"
    other.write_text("{}")
    unrelated.write_text("keep me")
    for minutes in range(4):
        save_reports(snapshot, tmp_path, "credit-score", T0 + timedelta(minutes=minutes), keep=2)
    kept = sorted(p.name for p in tmp_path.glob("drift-credit-score-*"))
    assert kept == [
        f"{report_stem('credit-score', T0 + timedelta(minutes=m))}{suffix}"
        for m in (2, 3)
        for suffix in (".html", ".json")
    ]
    assert other.exists()
    assert unrelated.exists()
    assert prune_reports(tmp_path, "credit-score", keep=2) == []


def test_the_html_embeds_everything_it_needs(snapshot: Any, tmp_path: Path) -> None:
    files = save_reports(snapshot, tmp_path, "credit-score", T0, keep=1)
    html = files.html.read_text()
    assert not re.search(r"""<script[^>]+src=""", html)
    assert not re.search(r"""<link[^>]+href=["']https?:""", html)
    assert "drawDashboard" in html  # Evidently's renderer, inline
    assert "age_in_years" in html


def test_computing_and_saving_a_report_opens_no_network_connection(
    german_credit: pd.DataFrame, tmp_path: Path
) -> None:
    """Evidently must not download anything at run time (no telemetry, no CDN, no models)."""
    events: list[tuple[str, Any]] = []
    watching = True

    def audit(event: str, args: Any) -> None:
        if watching and event in {"socket.connect", "socket.getaddrinfo", "urllib.Request"}:
            events.append((event, args))

    sys.addaudithook(audit)  # hooks cannot be removed; `watching` turns this one off
    try:
        columns = [(spec.name, spec.kind) for spec in feature_specs(german_credit)]
        config = build_config(store_url="sqlite://", model="credit-score", method="psi")
        fresh = run_report(german_credit[:500], german_credit[500:], columns, config)
        save_reports(fresh, tmp_path, "credit-score", T0, keep=1)
        socket.getaddrinfo("localhost", 80)  # the hook itself works
    finally:
        watching = False
    assert [event for event, _ in events] == ["socket.getaddrinfo"]


def test_importing_the_job_opens_no_network_connection() -> None:
    code = (
        "import sys\n"
        "events = []\n"
        "sys.addaudithook(lambda e, a: events.append(e) if e in "
        "{'socket.connect', 'socket.getaddrinfo', 'urllib.Request'} else None)\n"
        "import drift_job.job, drift_job.kube\n"
        "print(events)\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert finished.stdout.strip() == "[]"

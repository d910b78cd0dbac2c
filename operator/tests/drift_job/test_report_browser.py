"""The saved HTML report, opened in headless Chromium with the network cut off.

Chromium renders the page from the file alone (any request would go to a dead proxy), and the
rendered page shows the verdicts the job wrote: the same drifted columns and scores.
"""

from __future__ import annotations

import re
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from drift_job.compute import run_report
from drift_job.config import build_config
from drift_job.normalise import columns_from_snapshot
from drift_job.reports import save_reports
from localservers.pytest_plugin import require_binary

from .conftest import feature_specs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTH, HEIGHT = 1400, 2200
_ROW = re.compile(r"(\w+) (cat|num) (Not Detected|Detected) (.+?) (\d+(?:\.\d+)?(?:e-?\d+)?) ")


def _chromium(html: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(require_binary("chromium")),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            # Offline: every request goes to a closed port, every name fails to resolve.
            "--proxy-server=http://127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            # Let the page's scripts run (virtual time) before the dump or the screenshot.
            "--virtual-time-budget=15000",
            f"--window-size={WIDTH},{HEIGHT}",
            *mode,
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def _visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_the_report_renders_offline_and_shows_the_drifted_columns(
    german_credit: pd.DataFrame, tmp_path: Path
) -> None:
    columns = [(spec.name, spec.kind) for spec in feature_specs(german_credit)]
    younger = german_credit[german_credit.age_in_years < 40]
    older = german_credit[german_credit.age_in_years >= 40]
    snapshot = run_report(younger, older, columns, build_config(store_url="sqlite://", model="m"))
    found = {c.name: c for c in columns_from_snapshot(snapshot.dict())}
    drifted = sum(c.drifted for c in found.values())
    files = save_reports(snapshot, tmp_path / "reports", "credit-score", datetime.now(UTC), 1)

    text = _visible_text(_chromium(files.html, tmp_path / "profile-dom", "--dump-dom").stdout)
    assert "Dataset Drift is detected" in text
    assert (
        f"Drift is detected for {100 * drifted / len(found):.1f}% of columns "
        f"({drifted} out of {len(found)})"
    ) in text
    rows = _ROW.findall(text)
    assert len(rows) == 10  # the first page of the table
    assert any(verdict == "Detected" for _, _, verdict, _, _ in rows)
    for name, _, verdict, stattest, score in rows:
        assert (verdict == "Detected") is found[name].drifted, name
        assert stattest == found[name].stattest
        assert float(score) == pytest.approx(found[name].score, rel=1e-3, abs=1e-6)

    screenshot = tmp_path / "report.png"
    _chromium(files.html, tmp_path / "profile-shot", f"--screenshot={screenshot}")
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (WIDTH, HEIGHT)
    # A blank page compresses to a few kilobytes; the rendered charts and table do not.
    assert len(png) > 50_000

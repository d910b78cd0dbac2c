"""The saved HTML report, opened in headless Chromium with the network cut off.

Chromium renders the page from the file alone (any request would go to a dead proxy), and the
rendered page shows the verdicts the job wrote: the same drifted columns and scores.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from drift_job.compute import run_report
from drift_job.config import build_config
from drift_job.normalise import columns_from_snapshot
from drift_job.reports import save_reports
from localservers.browser import (
    HEIGHT,
    WIDTH,
    chromium,
    drift_table_rows,
    png_size,
    visible_text,
)
from localservers.pytest_plugin import require_binary

from .conftest import feature_specs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


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

    require_binary("chromium")
    text = visible_text(
        chromium(files.html.as_uri(), tmp_path / "profile-dom", "--dump-dom").stdout
    )
    assert "Dataset Drift is detected" in text
    assert (
        f"Drift is detected for {100 * drifted / len(found):.1f}% of columns "
        f"({drifted} out of {len(found)})"
    ) in text
    rows = drift_table_rows(text)
    assert len(rows) == 10  # the first page of the table
    assert any(row.drifted for row in rows)
    for row in rows:
        assert row.drifted is found[row.column].drifted, row.column
        assert row.stattest == found[row.column].stattest
        assert row.score == pytest.approx(found[row.column].score, rel=1e-3, abs=1e-6)

    screenshot = tmp_path / "report.png"
    chromium(files.html.as_uri(), tmp_path / "profile-shot", f"--screenshot={screenshot}")
    png = screenshot.read_bytes()
    assert png_size(png) == (WIDTH, HEIGHT)
    # A blank page compresses to a few kilobytes; the rendered charts and table do not.
    assert len(png) > 50_000

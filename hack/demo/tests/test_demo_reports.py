"""`make demo`'s drift step on the process path: the Evidently UI shows the run that found drift.

The monitoring chart's UI Deployment runs as processes beside the local control plane (its init
container's command, then its container's); the demo prints the run's page from the monitor's
status; headless Chromium opens that URL and sees the drifted columns the status names. The
screenshot is the README's: `UPDATE_SCREENSHOTS=1` writes it to docs/images/.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from demo.__main__ import DRIFTED_TRAFFIC, Narrator, drift_step
from demo.cluster import REPO_ROOT
from demo.stack import APP_NAMESPACE, MONITOR, LocalStack
from localkube.kube import Kube
from localservers.browser import chromium, drift_table_rows, png_size, visible_text
from localservers.pytest_plugin import require_binary
from modelmonitor.reportsui import project_id, project_name

pytestmark = [pytest.mark.cluster, pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = REPO_ROOT / "docs" / "images" / "evidently-ui-run.png"
WINDOW = (1400, 1500)


def test_the_demo_prints_the_run_that_found_drift_and_the_ui_shows_its_columns(
    kube: Kube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_binary("chromium")
    stack = LocalStack(kube, tmp_path)
    try:
        stack.install_charts()
        stack.start_api()
        stack.start_operator()
        ui = stack.start_reports_ui()
        stack.apply_monitor()
        stack.send_traffic(DRIFTED_TRAFFIC, drifted=True)
        stack.wait_prediction_log_flushed(DRIFTED_TRAFFIC)
        capsys.readouterr()
        drift = drift_step(stack, Narrator(total=1))
        printed = re.search(r"the run in the Evidently UI: (\S+)", capsys.readouterr().out)
        assert printed is not None
        url = printed.group(1)
        assert drift["datasetDrift"] is True
        assert url == drift["report"]["url"]
        project = project_id(project_name(APP_NAMESPACE, MONITOR))
        assert url.startswith(f"{ui}/projects/{project}/reports/")

        text = visible_text(chromium(url, tmp_path / "chromium", "--dump-dom").stdout)
        assert f"{APP_NAMESPACE}/{MONITOR} / Reports / {url.rsplit('/', 1)[1]}" in text
        features = {feature["name"]: feature for feature in drift["features"]}
        drifted = sum(feature["drifted"] for feature in features.values())
        assert (
            f"Drift is detected for {100 * drifted / len(features):.1f}% of columns "
            f"({drifted} out of {len(features)})"
        ) in text
        rows = drift_table_rows(text)
        assert len(rows) == 10  # the table's first page
        assert any(row.drifted for row in rows)
        for row in rows:
            assert row.drifted is features[row.column]["drifted"], row.column
            assert row.stattest == features[row.column]["stattest"]

        screenshot = tmp_path / "run.png"
        chromium(url, tmp_path / "chromium-shot", f"--screenshot={screenshot}", window=WINDOW)
        png = screenshot.read_bytes()
        assert png_size(png) == WINDOW
        assert len(png) > 50_000  # charts and a table, not a blank page
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(screenshot, SCREENSHOT)
    finally:
        try:
            stack.delete_monitor()  # while the operator runs: it lets go of its finalizer
            stack.uninstall_charts()
        finally:
            stack.stop()

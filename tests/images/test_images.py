"""The images build offline, run as non-root, and do their job.

The API image runs as Kubernetes runs it with the chart's security context (read-only root
filesystem with a tmpfs on /tmp, every capability dropped, no privilege escalation), published
on loopback only; it answers /readyz and scores an application with the model bundled at build
time. The operator image renders the example ModelMonitor; the drift image's entry point starts,
and its `reports-ui` serves the Evidently UI from a read-only volume.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from drift_job.workspace import RunLabels, add_run, row_count_report

from .imagetools import IMAGE_USER, PODMAN_RUN_FLAGS, REPO, free_port, podman, podman_run

# A cold build of the three images (the session fixture) takes longer than the default timeout.
pytestmark = [pytest.mark.images, pytest.mark.slow, pytest.mark.timeout(3600)]

# Upper bounds that catch a build tool or a cache left in an image (MB, uncompressed).
SIZE_BUDGET_MB = {"credit-api": 700, "operator": 450, "drift": 1400}
RESTRICTED = (
    "--read-only",
    "--tmpfs",
    "/tmp:rw,size=64m",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
)


def first_application() -> dict[str, object]:
    with (REPO / "app/src/credit_api/data/germancredit.csv").open(newline="") as rows:
        row: dict[str, str] = dict(next(csv.DictReader(rows)))
    row.pop("creditability")
    return {key: int(value) if value.isdigit() else value for key, value in row.items()}


@contextlib.contextmanager
def running_api(image: str) -> Iterator[str]:
    """The API container, published on a free loopback port; yields its base URL."""
    port = free_port()
    started = podman(
        "run",
        "--detach",
        *PODMAN_RUN_FLAGS,
        *RESTRICTED,
        "--publish",
        f"127.0.0.1:{port}:8000",
        image,
    )
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        logs = podman("logs", container)
        podman("rm", "--force", "--time", "5", container)
        print(f"credit-api container logs:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")


def wait_ready(base_url: str, timeout: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Exception | httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=2)
            if response.status_code == 200:
                return response
            last = response
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.5)
    pytest.fail(f"the API did not become ready in {timeout}s: {last!r}")


def test_images_run_as_a_numeric_non_root_user(images: dict[str, str]) -> None:
    for name, image in images.items():
        inspected = podman("image", "inspect", "--format", "{{.Config.User}}", image)
        assert inspected.stdout.strip() == IMAGE_USER, name
        whoami = podman_run(image, "-u", options=("--entrypoint", "id"))
        assert whoami.stdout.strip() == "10001", (name, whoami.stderr)


def test_image_sizes_stay_within_budget(images: dict[str, str]) -> None:
    sizes = {}
    for name, image in images.items():
        inspected = podman("image", "inspect", "--format", "{{.Size}}", image)
        sizes[name] = int(inspected.stdout) // 1_000_000
    print("image sizes (MB):", json.dumps(sizes))
    for name, size in sizes.items():
        assert size <= SIZE_BUDGET_MB[name], f"{name} is {size} MB"


def test_final_images_carry_no_build_tools(images: dict[str, str]) -> None:
    for name, image in images.items():
        probe = podman_run(
            image,
            "-c",
            "for t in pip pip3 gcc cc make apt-get; do "
            'p=$(command -v $t) && [ "$t" != apt-get ] && echo $p; done; '
            "ls /opt/venv/bin | grep -E '^pip' || true",
            options=("--entrypoint", "sh"),
        )
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.strip() == "", f"{name} carries {probe.stdout.split()}"


def test_api_image_serves_predictions_read_only_and_unprivileged(
    images: dict[str, str],
) -> None:
    with running_api(images["credit-api"]) as base_url:
        ready = wait_ready(base_url)
        assert ready.json()["model_loaded"] is True
        response = httpx.post(f"{base_url}/api/v1/predict", json=first_application(), timeout=10)
        assert response.status_code == 200, response.text
        prediction = response.json()
        assert prediction["model"] == "credit-score"
        assert prediction["decision"] in {"good", "bad"}
        assert 0 <= prediction["probability_of_default"] <= 1
        # The dev loop's traffic script (hack/kind/traffic.py) against the same container.
        sent = subprocess.run(
            [
                sys.executable,
                str(REPO / "hack/kind/traffic.py"),
                "--url",
                base_url,
                "--rows",
                "100",
                "--drift",
                "--pause",
                "0",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert sent.returncode == 0, sent.stderr
        assert "sent 100 drifted applications" in sent.stdout
        metrics = httpx.get(f"{base_url}/metrics", timeout=5).text
        scored = sum(
            sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "credit_api_predictions_total"
        )
        assert scored == 101


def test_operator_image_renders_the_example_monitor(images: dict[str, str]) -> None:
    rendered = podman_run(
        images["operator"],
        "render",
        "-f",
        "/examples/credit-score-monitor.yaml",
        options=(
            "--volume",
            f"{REPO / 'manifests/examples'}:/examples:ro",
            "--env",
            f"MODELMONITOR_DRIFT_IMAGE={images['drift']}",
            "--read-only",
        ),
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    kinds = {obj["kind"] for obj in objects}
    assert {"CronJob", "PrometheusRule", "ConfigMap"} <= kinds
    cronjob = next(obj for obj in objects if obj["kind"] == "CronJob")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == images["drift"]


def test_drift_image_entry_point_starts(images: dict[str, str]) -> None:
    helped = podman_run(images["drift"], "--help", options=("--read-only",))
    assert helped.returncode == 0, helped.stderr
    assert "--store-url" in helped.stdout


def test_drift_image_serves_the_evidently_ui_offline_from_a_read_only_volume(
    images: dict[str, str], tmp_path: Path
) -> None:
    """The chart's UI container: `reports-ui` from the drift image, the volume read-only, no
    network beyond its published port. It lists the run written here, and serves Evidently's
    page and scripts from the installed package."""
    volume = tmp_path / "reports"
    volume.mkdir()
    volume.chmod(0o777)  # the image's user creates the workspace there, as on a volume
    prepared = podman_run(
        images["drift"],
        "--workspace",
        "/reports/workspace",
        "--prepare",
        options=("--read-only", "--entrypoint", "reports-ui", "-v", f"{volume}:/reports"),
    )
    assert prepared.returncode == 0, prepared.stderr
    labels = RunLabels("a run", ("NoDrift",), {}, datetime(2026, 1, 1))  # naive UTC
    run = add_run(
        volume / "workspace", "credit/credit-score", row_count_report(5), description="",
        labels=labels, keep=5,
    )  # fmt: skip
    port = free_port()
    started = podman(
        "run",
        "--detach",
        *PODMAN_RUN_FLAGS,
        *RESTRICTED,
        "--user",
        "65532:65532",  # the chart's identity for the UI and the drift jobs
        "--publish",
        f"127.0.0.1:{port}:8000",
        "-v",
        f"{volume}:/reports:ro",
        "--entrypoint",
        "reports-ui",
        images["drift"],
        *("--workspace", "/reports/workspace", "--host", "0.0.0.0", "--poll-seconds", "1"),
    )
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/version", timeout=2).is_success:
                    break
            assert time.monotonic() < deadline, podman("logs", container).stderr[-3000:]
            time.sleep(0.5)
        runs = httpx.get(f"{url}/api/projects/{run.project}/snapshots", timeout=10).json()
        assert [r["id"] for r in runs] == [str(run.run)]
        page = httpx.get(f"{url}/projects/{run.project}/reports/{run.run}", timeout=10)
        assert page.status_code == 200
        scripts = re.findall(r'src="(/static/js/[^"]+\.js)"', page.text)
        assert scripts
        for script in scripts:
            assert httpx.get(f"{url}{script}", timeout=10).status_code == 200
    finally:
        podman("rm", "--force", "--time", "5", container)


def test_drift_image_reports_an_unreachable_store_with_its_exit_code(
    images: dict[str, str],
) -> None:
    """Exit 4 (docs/contracts.md): the job ran, imported Evidently, and found no store."""
    ran = podman_run(
        images["drift"],
        "--store-url",
        "postgresql+psycopg://nobody:x@127.0.0.1:1/none",
        "--model",
        "credit-score",
        "--output",
        "json",
        options=("--read-only", "--tmpfs", "/tmp", "--network", "none"),
    )
    assert ran.returncode == 4, ran.stdout + ran.stderr

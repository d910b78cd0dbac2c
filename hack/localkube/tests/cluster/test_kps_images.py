"""kube-prometheus-stack's images: exactly those the vendored chart runs, each built from the Go
module of the version its tag names, with the upstream image's entrypoint and user."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from localkube.build import binary_path
from localkube.errors import MissingToolError
from localkube.images import ImageArchive
from localkube.kps import (
    CHART_IMAGES,
    ChartImage,
    chart_images,
    chart_path,
    install_values,
    kube_prometheus_stack_images,
)
from localkube.pytest_plugin import unavailable
from localservers.ports import free_port
from localservers.process import ServerProcess

# A cold build compiles four Go projects: far beyond the suite's 900 s default on 2 cores.
COLD_BUILD_TIMEOUT = 3600
# kube-state-metrics (cobra) has a subcommand where the others have the flag.
VERSION_COMMANDS = {"kube-state-metrics": "version"}


def the_chart() -> Path:
    try:
        return chart_path()
    except MissingToolError as error:
        unavailable(str(error))


def rendered_chart(helm: Path, chart: Path, values_file: Path) -> str:
    completed = subprocess.run(
        [str(helm), "template", "kube-prometheus-stack", str(chart),
         "--namespace", "monitoring", "--values", str(values_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    return completed.stdout


def test_the_images_built_are_exactly_those_the_vendored_chart_runs(
    helm_binary: Path, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(install_values()))
    chart = the_chart()
    rendered = chart_images(rendered_chart(helm_binary, chart, values))
    built = [image.reference for image in CHART_IMAGES]
    assert len(built) == len(set(built))
    assert rendered == set(built), (
        f"{chart.name} with hack/kps/values.yaml runs "
        f"{sorted(rendered)}; versions.py and kps.CHART_IMAGES build {sorted(built)}"
    )


def test_chart_images_finds_container_resource_and_reloader_images() -> None:
    manifests = """
kind: Deployment
spec:
  template:
    spec:
      initContainers: [{name: init, image: "example.test/init:1"}]
      containers:
        - name: operator
          image: example.test/operator:1
          args: [--log-level=info, --prometheus-config-reloader=example.test/reloader:1]
---
kind: Prometheus
spec: {image: "example.test/prometheus:1", replicas: 1}
---
"""
    assert chart_images(manifests) == {
        "example.test/init:1",
        "example.test/operator:1",
        "example.test/reloader:1",
        "example.test/prometheus:1",
    }


# --- the built images (cached by version: a cold build takes tens of minutes) ----------------


@pytest.fixture(scope="module")
def built_images(request: pytest.FixtureRequest) -> dict[str, ImageArchive]:
    """reference -> archive, building what is missing with progress on the terminal."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    started = time.monotonic()
    live = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with live:
        try:
            archives = kube_prometheus_stack_images()
        except MissingToolError as error:
            unavailable(str(error))
        print(f"\nkube-prometheus-stack images ready in {time.monotonic() - started:.0f} s")
    return {archive.reference: archive for archive in archives}


def expected_version(reference: str) -> str:
    """``...:v3.14.0-distroless`` -> ``3.14.0``: the release the tag names."""
    found = re.search(r":v?(\d+\.\d+\.\d+)", reference)
    assert found is not None, reference
    return found.group(1)


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
@pytest.mark.parametrize("image", CHART_IMAGES, ids=lambda i: i.binary.name)
def test_each_binary_reports_the_version_its_image_tag_names(
    image: ChartImage, built_images: dict[str, ImageArchive]
) -> None:
    assert image.reference in built_images
    command = VERSION_COMMANDS.get(image.binary.name, "--version")
    completed = subprocess.run(
        [str(binary_path(image.binary)), command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert re.search(rf"version:? v?{re.escape(expected_version(image.reference))}\b", output), (
        output
    )


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_the_operator_defaults_to_the_config_reloader_image_built_here(
    built_images: dict[str, ImageArchive],
) -> None:
    # The default is "...:v" + the version stamped at build time: empty without the ldflag.
    reloader = image_of("prometheus-config-reloader")
    completed = subprocess.run(
        [str(binary_path(image_of("operator").binary)), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert f'(default "{reloader.reference}")' in completed.stdout + completed.stderr


def archive_contents(archive: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """The docker-archive's manifest entry, image config, and every file path -> mode."""
    with tarfile.open(archive) as outer:
        manifest = json.load(_member(outer, "manifest.json"))
        assert len(manifest) == 1
        config = json.load(_member(outer, manifest[0]["Config"]))
        files: dict[str, int] = {}
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=_member(outer, layer)) as inner:
                files.update({f"/{m.name.lstrip('./')}": m.mode for m in inner if m.isfile()})
    return manifest[0], config, files


def _member(archive: tarfile.TarFile, name: str) -> Any:
    extracted = archive.extractfile(name)
    assert extracted is not None, name
    return extracted


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
@pytest.mark.parametrize("image", CHART_IMAGES, ids=lambda i: i.binary.name)
def test_each_archive_holds_the_tagged_image_with_its_upstream_entrypoint_and_user(
    image: ChartImage, built_images: dict[str, ImageArchive]
) -> None:
    manifest, config, files = archive_contents(built_images[image.reference].archive)
    assert manifest["RepoTags"] == [image.reference]
    settings = config["config"]
    assert settings["Entrypoint"] == [image.path, *image.arguments]
    assert settings["User"] == image.user
    assert settings.get("WorkingDir", "") == image.workdir
    assert sorted(settings.get("ExposedPorts") or {}) == sorted(image.ports)
    assert list(files) == [image.path], "a scratch image holds the binary and nothing else"
    assert files[image.path] & 0o111, f"{image.path} is not executable"


# --- the servers answer on their APIs (the web UIs are not built) -----------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    """start(argv, ready_url) -> a running ServerProcess, stopped after the test."""
    started: list[ServerProcess] = []

    def start(argv: list[str], ready_url: str) -> ServerProcess:
        process = ServerProcess(argv, tmp_path / f"{Path(argv[0]).name}.log")
        process.start()
        started.append(process)
        process.wait_until(lambda: httpx.get(ready_url, timeout=2).status_code == 200, 60, argv[0])
        return process

    yield start
    for process in started:
        process.stop()


def image_of(binary_name: str) -> ChartImage:
    return next(image for image in CHART_IMAGES if image.binary.name == binary_name)


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_prometheus_serves_its_api_and_knows_kubernetes_service_discovery_only(
    built_images: dict[str, ImageArchive], server: Any, tmp_path: Path
) -> None:
    prometheus = image_of("prometheus")
    port = free_port()
    # What the operator writes: Kubernetes service discovery (an API server that is not there
    # only makes discovery retry).
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump({
            "scrape_configs": [{
                "job_name": "pods",
                "kubernetes_sd_configs": [{"role": "pod", "api_server": "http://127.0.0.1:9"}],
            }]
        })
    )  # fmt: skip
    argv = [
        str(binary_path(prometheus.binary)),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
    ]
    server([*argv, f"--web.listen-address=127.0.0.1:{port}"], f"http://127.0.0.1:{port}/-/ready")
    info = httpx.get(f"http://127.0.0.1:{port}/api/v1/status/buildinfo", timeout=10).json()
    assert info["data"]["version"] == expected_version(prometheus.reference)

    # Built with remove_all_sd: a cloud provider's discovery is not compiled in.
    config.write_text(
        yaml.safe_dump({"scrape_configs": [{"job_name": "ec2", "ec2_sd_configs": [{}]}]})
    )
    refused = subprocess.run(
        [*argv, f"--web.listen-address=127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "ec2_sd_configs" in refused.stderr


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_alertmanager_serves_its_api_and_a_placeholder_for_the_missing_ui(
    built_images: dict[str, ImageArchive], server: Any, tmp_path: Path
) -> None:
    alertmanager = image_of("alertmanager")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        yaml.safe_dump({"route": {"receiver": "none"}, "receivers": [{"name": "none"}]})
    )
    server(
        [str(binary_path(alertmanager.binary)), f"--config.file={config}",
         f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address="],
        f"http://127.0.0.1:{port}/-/ready",
    )  # fmt: skip
    status = httpx.get(f"http://127.0.0.1:{port}/api/v2/status", timeout=10).json()
    assert status["versionInfo"]["version"] == expected_version(alertmanager.reference)
    page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert page.status_code == 200
    assert "built by localkube from its Go module" in page.text

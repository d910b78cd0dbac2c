"""Helpers of the image tests: build the images with hack/images/build.sh, run them with podman."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from localservers.pytest_plugin import unavailable

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = (
    REPO / "app/Dockerfile",
    REPO / "operator/Dockerfile",
    REPO / "operator/Dockerfile.drift",
)
IMAGE_NAMES = ("credit-api", "operator", "drift")
# The image's USER (numeric, so that Kubernetes' runAsNonRoot can check it).
IMAGE_USER = "10001:10001"
# runc: crun fails on hosts with hybrid cgroups; explicit limits, since raising them is not
# permitted in unprivileged sandboxes. The same flags as hack/images/build.sh.
PODMAN_RUN_FLAGS = (
    "--runtime",
    os.environ.get("PODMAN_RUNTIME", "runc"),
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
)
# podman build: the run flags and --layers=false, as hack/images/build.sh builds.
PODMAN_BUILD_FLAGS = (*PODMAN_RUN_FLAGS, "--layers=false")


def require_podman() -> str:
    podman = shutil.which("podman")
    if podman is None:
        unavailable("podman is needed to build and run the images (hack/install-system-deps.sh)")
    if os.geteuid() != 0:
        unavailable("the image tests build a debootstrap base image and need root")
    return podman


def run_or_fail(
    args: list[str], *, timeout: float, what: str, env: dict[str, str] | None = None
) -> str:
    """Runs a build step from the repository root; its stdout, or the test fails with the tail
    of its stderr (what a build script says when it fails)."""
    completed = subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, check=False, timeout=timeout, env=env
    )
    if completed.returncode != 0:
        pytest.fail(
            f"{what} failed ({completed.returncode}):\n{completed.stderr[-6000:]}", pytrace=False
        )
    return completed.stdout


def build_images() -> dict[str, str]:
    """Builds (or finds up to date) every image; returns name -> reference."""
    build = ["bash", str(REPO / "hack/images/build.sh"), *IMAGE_NAMES]
    run_or_fail(build, timeout=3600, what="hack/images/build.sh")
    images: dict[str, str] = json.loads((REPO / "build/images.json").read_text())
    return {name: images[name] for name in IMAGE_NAMES}


def build_live_update_image(name: str, packages: tuple[str, ...], tag: str) -> None:
    """As the Tiltfile builds on kind (podman here instead of Docker): hack/tilt/image.sh, which
    reuses build.sh's image, adds the live-update layer and tags the result `tag`."""
    run_or_fail(
        ["bash", str(REPO / "hack/tilt/image.sh"), name, *packages],
        timeout=3600,
        what=f"hack/tilt/image.sh {name}",
        env={**os.environ, "EXPECTED_REF": tag},
    )


def podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=timeout
    )


def podman_run(
    image: str, *args: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Runs a container to completion, removed afterwards."""
    return podman("run", "--rm", *PODMAN_RUN_FLAGS, *options, image, *args)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

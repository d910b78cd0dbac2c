"""Fixtures for the image tests: the three images, built once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The test modules import their helpers from imagetools, beside this file (--import-mode=importlib
# does not put test folders on sys.path).
sys.path.insert(0, str(Path(__file__).parent))

from imagetools import build_images, require_podman


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """name -> image reference, for credit-api, operator and drift."""
    require_podman()
    return build_images()

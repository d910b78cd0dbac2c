"""Fixtures for the chart tests: the pinned helm binary, wrapped by charttools.Helm."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The test modules import their helpers from charttools, beside this file (--import-mode=importlib
# does not put test folders on sys.path).
sys.path.insert(0, str(Path(__file__).parent))

from charttools import Helm, unavailable


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    """HELM_BIN if set, else the pinned helm that localkube builds and caches on first use."""
    configured = os.environ.get("HELM_BIN")
    if configured:
        return Path(configured)
    try:
        from localkube.tools import helm_binary as build_helm  # noqa: PLC0415
    except ImportError as error:
        unavailable(f"helm is needed for the chart tests and localkube is not installed: {error}")
    try:
        return build_helm()
    except Exception as error:  # any build failure means: no helm
        unavailable(f"helm is needed for the chart tests and could not be built: {error}")


@pytest.fixture(scope="session")
def helm(helm_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_binary, tmp_path_factory.mktemp("helm-values"))

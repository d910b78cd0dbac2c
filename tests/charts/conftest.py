"""Fixtures for the chart tests: the pinned helm, wrapped by charttools.Helm."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from localservers.pytest_plugin import unavailable

from .charttools import Helm


@pytest.fixture(scope="session")
def helm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm template/lint/run with the pinned helm (localkube's ``helm_binary`` fixture, built
    and cached on first use), or with $HELM_BIN when set (a quicker local iteration)."""
    configured = os.environ.get("HELM_BIN")
    binary = Path(configured) if configured else request.getfixturevalue("helm_binary")
    if not binary.is_file():
        unavailable(f"helm binary {binary} does not exist")
    return Helm(binary, tmp_path_factory.mktemp("helm-values"))

"""Where things live: the binary cache outside the repository and our Go wrapper modules."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "CREDIT_MONITORING_CACHE"
GO_MODULES_ENV = "LOCALKUBE_GO_MODULES"


def cache_root() -> Path:
    """``$CREDIT_MONITORING_CACHE`` or ``~/.cache/credit-model-monitoring``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "credit-model-monitoring"


def binary_dir(version: str) -> Path:
    """The cache folder of one pinned version: ``<cache>/k8s/<version>/``."""
    return cache_root() / "k8s" / version


def go_modules_dir() -> Path:
    """The repository's hack/k8s (the wrapper modules), found from this package's location.

    The package is installed editable from hack/localkube/src/localkube; a non-editable install
    must say where the modules are with ``$LOCALKUBE_GO_MODULES``.
    """
    configured = os.environ.get(GO_MODULES_ENV)
    if configured:
        return Path(configured)
    candidate = Path(__file__).resolve().parents[3] / "k8s"
    if not (candidate / "kubernetes" / "go.mod").is_file():
        raise FileNotFoundError(
            f"cannot find the Go wrapper modules at {candidate}; set ${GO_MODULES_ENV} "
            "to the repository's hack/k8s folder"
        )
    return candidate


def state_dir() -> Path:
    """Where `localkube up` keeps the running cluster's files (certificates, data, pid file)."""
    return cache_root() / "localkube"

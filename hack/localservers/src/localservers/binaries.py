"""Finding the system binaries the real servers need, with a useful message when one is missing."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

# binary -> the Debian package that ships it (see hack/install-system-deps.sh)
DEBIAN_PACKAGES = {
    "initdb": "postgresql",
    "postgres": "postgresql",
    "pg_ctl": "postgresql",
    "psql": "postgresql-client",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "chromium": "chromium",
    "wrk": "wrk",
    "valgrind": "valgrind",
    "podman": "podman",
    "buildah": "buildah",
}

_EXTRA_DIRS = ("/usr/lib/postgresql/*/bin", "/usr/sbin", "/usr/bin", "/usr/local/bin")


class BinaryMissingError(RuntimeError):
    """A system binary a test or a local run needs is not installed."""


def find(name: str) -> Path | None:
    found = shutil.which(name)
    if found:
        return Path(found)
    for pattern in _EXTRA_DIRS:
        for directory in sorted(glob.glob(pattern), reverse=True):
            candidate = Path(directory) / name
            if candidate.is_file():
                return candidate
    return None


def require(name: str) -> Path:
    """The binary's path, or BinaryMissingError saying how to install it."""
    path = find(name)
    if path is None:
        package = DEBIAN_PACKAGES.get(name, name)
        raise BinaryMissingError(
            f"{name} is not installed: run `bash hack/install-system-deps.sh` "
            f"(or `apt-get install {package}`)"
        )
    return path

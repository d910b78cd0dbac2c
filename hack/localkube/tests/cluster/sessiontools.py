"""Running a pytest session of its own, as a user would, from the cluster tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def pytest_env(**extra: str) -> dict[str, str]:
    """This environment without any cluster choice of the shell's, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KUBECONFIG", "LOCALKUBE_USE_KUBECONFIG"}
    }
    return env | extra


def run_pytest(
    folder: Path, env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

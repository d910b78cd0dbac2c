"""The Kubernetes definitions inside both charts' values.schema.json are the current ones."""

from __future__ import annotations

import subprocess
import sys

from .charttools import CHARTS


def test_the_kubernetes_definitions_in_the_values_schemas_are_in_sync() -> None:
    completed = subprocess.run(
        [sys.executable, str(CHARTS / "sync-schemas.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr

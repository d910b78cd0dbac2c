"""The operator process never loads the drift job, Evidently or pandas (DESIGN.md)."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import importlib, pkgutil, sys
import modelmonitor
for module in pkgutil.walk_packages(modelmonitor.__path__, "modelmonitor."):
    importlib.import_module(module.name)
print(sorted({name.split(".")[0] for name in sys.modules} & {"drift_job", "evidently", "pandas"}))
"""


def test_importing_every_operator_module_loads_none_of_the_drift_job() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300, check=False
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip() == "[]"

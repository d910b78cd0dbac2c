"""The credit API with a fault switch: how the end-to-end test makes its SLO burn.

The API never answers 5xx for anything a client sends, so an availability incident has to be
injected. `create_app` is the real application whose requests see the runtime through a view
that, while the file named by CREDIT_API_FAULT_FILE exists, fails to give the predictor, the
way a corrupted model volume would. Requests fail after routing, so the app's own middleware
counts the 500s under their route: the SLI, the recording rules and the burn-rate alerts see
exactly what they would see in an incident.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from credit_api.main import create_app as create_real_app
from credit_api.runtime import Runtime
from credit_api.service import Predictor

FAULT_FILE_ENV = "CREDIT_API_FAULT_FILE"


class InjectedFaultError(RuntimeError):
    """The fault switch is on."""


class FaultyRuntime:
    """What requests see of the runtime (app.state.runtime): all of it, but no predictor
    while the fault file exists. The lifespan keeps starting and stopping the real one."""

    def __init__(self, runtime: Runtime, fault_file: Path) -> None:
        self._runtime = runtime
        self._fault_file = fault_file

    @property
    def predictor(self) -> Predictor | None:
        if self._fault_file.exists():
            raise InjectedFaultError(f"fault injected ({self._fault_file} exists)")
        return self._runtime.predictor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)


def create_app() -> FastAPI:
    app = create_real_app()
    app.state.runtime = FaultyRuntime(app.state.runtime, Path(os.environ[FAULT_FILE_ENV]))
    return app

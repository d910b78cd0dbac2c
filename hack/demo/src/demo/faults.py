"""The credit API with a fault switch: how the end-to-end test makes its SLO burn.

The API never answers 5xx for anything a client sends, so an availability incident has to be
injected. `create_app` is the real application with one dependency overridden: while the file
named by CREDIT_API_FAULT_FILE exists, getting the predictor for a request fails, the way a
corrupted model volume would. The app's own middleware counts those 500s, so the SLI, the
recording rules and the burn-rate alerts see exactly what they would see in an incident.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request

from credit_api import deps
from credit_api.main import create_app as create_real_app
from credit_api.service import Predictor

FAULT_FILE_ENV = "CREDIT_API_FAULT_FILE"


class InjectedFaultError(RuntimeError):
    """The fault switch is on."""


def create_app() -> FastAPI:
    app = create_real_app()
    fault_file = Path(os.environ[FAULT_FILE_ENV])

    async def predictor_unless_faulty(request: Request) -> Predictor:
        if fault_file.exists():
            raise InjectedFaultError(f"fault injected ({fault_file} exists)")
        return await deps.get_predictor(request)

    app.dependency_overrides[deps.get_predictor] = predictor_unless_faulty
    return app

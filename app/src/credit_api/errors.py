"""Error responses: every failure is JSON with a reason, and validation errors name the field."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from credit_api.metrics import Metrics

log = logging.getLogger(__name__)

# A batch of 1000 bad rows would otherwise answer with 20000 errors.
MAX_REPORTED_ERRORS = 50


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    async def validation_failed(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        metrics.errors.labels("validation").inc()
        errors = exc.errors()
        # The offending input is left out: it may be large, and it is personal data.
        detail = [
            {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
            for error in errors[:MAX_REPORTED_ERRORS]
        ]
        content: dict[str, object] = {"detail": detail}
        if len(errors) > MAX_REPORTED_ERRORS:
            content["errors_omitted"] = len(errors) - MAX_REPORTED_ERRORS
        return JSONResponse(content, status_code=422)

    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        metrics.errors.labels("unhandled").inc()
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(Exception, unhandled)

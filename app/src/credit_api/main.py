"""The ASGI application: `create_app()` builds it, `app` is the default instance."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from credit_api import __version__
from credit_api.config import Settings
from credit_api.errors import install_error_handlers
from credit_api.metrics import Metrics
from credit_api.middleware import BodyLimitMiddleware, RequestMetricsMiddleware
from credit_api.routes import feedback, health, model, predict
from credit_api.routes.metrics import metrics_route
from credit_api.runtime import Runtime

DESCRIPTION = """Scores credit applications (the German Credit attributes) with a logistic
regression, logs every prediction to the prediction store for drift monitoring, and exports
Prometheus metrics. `POST /api/v1/feedback` records actual outcomes."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    runtime = Runtime(settings, metrics)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # What start-up made (modules, the model, FastAPI's routes) lives as long as the
        # process: out of the collector's reach, a full collection scans only what requests
        # made (start-up's garbage is collected first, or freezing would keep it).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Credit scoring API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app, metrics)
    app.include_router(predict.create_router(settings.max_batch_size))
    app.include_router(model.router)
    app.include_router(feedback.router)
    app.include_router(health.router)
    app.router.routes.append(metrics_route(metrics))
    # The last added runs first: metrics see every request, 413s from the body limit included.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, metrics=metrics)
    if settings.metrics_enabled:
        app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app


app = create_app()

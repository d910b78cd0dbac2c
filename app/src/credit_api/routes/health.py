"""GET /healthz (the process answers) and GET /readyz (it can score)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from credit_api.deps import RuntimeDep
from credit_api.schemas import Liveness, Readiness

router = APIRouter(tags=["health"])

STORE_UNAVAILABLE = "prediction store unavailable (the service log has the error)"


@router.get("/healthz", summary="Liveness: the process is serving requests")
async def healthz() -> Liveness:
    return Liveness(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: the model is loaded (the store's state is reported, not required)",
    responses={503: {"model": Readiness, "description": "The model is not loaded."}},
)
async def readyz(runtime: RuntimeDep, response: Response) -> Readiness:
    """Ready when the model is loaded. A store outage only degrades the service.

    Predictions keep working while the store is down (records queue, then are counted as
    dropped), so taking the pod out of the Service would turn a logging outage into an
    API outage; the outage shows here, in metrics and in alerts instead.

    Anyone who reaches the port may read this: the store's error (which names its host, port
    and user) goes to the service log, not into the answer.
    """
    writer = runtime.writer
    if runtime.engine is None:
        store = "disabled"
    elif writer is not None and writer.store_up:
        store = "ok"
    else:
        store = "unavailable"
    if runtime.model is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(
            status="not_ready", model_loaded=False, store=store, detail=runtime.model_error
        )
    degraded = store == "unavailable"
    return Readiness(
        status="degraded" if degraded else "ready",
        model_loaded=True,
        store=store,
        detail=STORE_UNAVAILABLE if degraded else None,
    )

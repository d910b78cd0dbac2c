"""Serves N one-row predictions through the ASGI app in this process, with no network.

`bench_api.py --instructions` runs it under callgrind twice per variant (a short and a long
run) and divides the difference by the extra requests: start-up cancels out, and what is left
is the instructions one request costs, deterministic where wall and CPU times on a shared
machine move by 10-20% from one run to the next. Settings come from the environment
(`CREDIT_API_*`), as for the served variants.

    python in_process.py REQUESTS
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from credit_api.main import create_app
from credit_api.schemas import EXAMPLE_APPLICATION

BODY = json.dumps(EXAMPLE_APPLICATION).encode()
HEADERS = [
    (b"host", b"127.0.0.1"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]
# Enough for every lazy import and the interpreter's specialisation to settle.
WARMUP_REQUESTS = 200


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/predict",
        "raw_path": b"/api/v1/predict",
        "query_string": b"",
        "root_path": "",
        "headers": HEADERS,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def predict(app: Any) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope(), receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"the prediction failed: {sent}")


async def serve(requests: int) -> None:
    app = create_app()
    async with app.router.lifespan_context(app):  # start-up and shutdown, as uvicorn runs them
        for _ in range(WARMUP_REQUESTS + requests):
            await predict(app)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))

"""GET /metrics: this instance's registry, served by prometheus_client's own ASGI app.

prometheus_client negotiates what it sends: OpenMetrics when the scraper's Accept asks for it
(Prometheus does), the text format otherwise, gzip when Accept-Encoding allows it, and only
the families a `name[]` query names. It renders on the event loop, which the series updated
there need (loop_metrics): a scrape never sees half an observation.
"""

from __future__ import annotations

from prometheus_client import make_asgi_app
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from credit_api.metrics import Metrics

PATH = "/metrics"


class _MetricsEndpoint:
    """prometheus_client's ASGI app as a Starlette endpoint.

    An instance, not a function: Starlette hands requests to any other callable unchanged, as
    an ASGI app, where it would wrap a function as a request handler.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._app = make_asgi_app(metrics.registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def metrics_route(metrics: Metrics) -> Route:
    return Route(PATH, _MetricsEndpoint(metrics), methods=["GET"], include_in_schema=False)

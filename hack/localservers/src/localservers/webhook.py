"""A webhook receiver standing in for a pager: it records what Alertmanager posts."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Alert = dict[str, Any]


class WebhookReceiver:
    """An HTTP server on a free port that keeps every Alertmanager notification.

    ``host``: loopback by default; an Alertmanager in a pod of the local node reaches the host
    at the node's bridge address instead.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    receiver.notifications.append(payload)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass  # the notifications are the record

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self._server.server_port}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def alerts(self, name: str | None = None, status: str | None = None) -> list[Alert]:
        """Every alert received so far, optionally only one alertname and status."""
        with self._lock:
            alerts = [a for n in self.notifications for a in n.get("alerts", [])]
        return [
            a
            for a in alerts
            if (name is None or a["labels"].get("alertname") == name)
            and (status is None or a.get("status") == status)
        ]

    def wait_for(self, name: str, status: str = "firing", timeout: float = 120.0) -> list[Alert]:
        """Block until an alert with that name and status arrives; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.alerts(name, status)
            if found:
                return found
            time.sleep(0.2)
        received = sorted({a["labels"].get("alertname", "?") for a in self.alerts()})
        raise TimeoutError(f"no {status} {name} alert within {timeout:.0f}s; received: {received}")

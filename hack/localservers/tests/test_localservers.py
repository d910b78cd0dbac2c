"""The real servers the other tests rely on actually start, serve, survive restarts and stop."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import psycopg
import pytest

from localservers.postgres import PostgresServer
from localservers.prometheus import AlertmanagerServer, PrometheusServer


@pytest.mark.postgres
def test_postgres_keeps_data_across_a_restart(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("restart_check")
    dsn = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE t (x int)")
        connection.execute("INSERT INTO t VALUES (42)")
    postgres_server.stop()
    assert not postgres_server.running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
    postgres_server.start()
    with psycopg.connect(dsn) as connection:
        assert connection.execute("SELECT x FROM t").fetchall() == [(42,)]


class _Webhook:
    """A tiny HTTP receiver standing in for a pager: it records what Alertmanager posts."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, object]] = []
        received = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook() -> Iterator[_Webhook]:
    receiver = _Webhook()
    yield receiver
    receiver.server.shutdown()


@pytest.mark.prometheus
def test_an_alert_travels_from_prometheus_to_the_webhook(
    tmp_path: Path,
    prometheus_factory: Callable[..., PrometheusServer],
    alertmanager_factory: Callable[..., AlertmanagerServer],
    webhook: _Webhook,
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n- name: t\n  rules:\n  - alert: AlwaysFiring\n    expr: vector(1)\n"
        "    labels: {severity: info}\n"
    )
    alertmanager = alertmanager_factory(webhook.url)
    prometheus = prometheus_factory(
        [{"job_name": "self", "static_configs": [{"targets": ["127.0.0.1:9"]}]}],
        [rules],
        alertmanager_url=alertmanager.url,
    )
    prometheus.wait_for('ALERTS{alertname="AlwaysFiring",alertstate="firing"}', timeout=30)
    deadline = time.monotonic() + 30
    while not webhook.payloads and time.monotonic() < deadline:
        time.sleep(0.2)
    assert webhook.payloads, "Alertmanager never called the webhook"
    alerts = webhook.payloads[0]["alerts"]
    assert isinstance(alerts, list)
    assert alerts[0]["labels"]["alertname"] == "AlwaysFiring"


@pytest.mark.prometheus
def test_prometheus_reports_a_bad_query_with_its_own_message(
    prometheus_factory: Callable[..., PrometheusServer],
) -> None:
    prometheus = prometheus_factory([])
    with pytest.raises(ValueError, match="parse error"):
        prometheus.query("sum(")
    assert prometheus.query("vector(3)")[0]["value"][1] == "3"

"""The real servers the other tests rely on actually start, serve, survive restarts and stop."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from localservers.postgres import PostgresServer
from localservers.process import cpu_seconds, main_thread_cpu_seconds, tree_cpu_seconds
from localservers.prometheus import AlertmanagerServer, PrometheusServer
from localservers.webhook import WebhookReceiver


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


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.mark.prometheus
def test_an_alert_travels_from_prometheus_to_the_webhook(
    tmp_path: Path,
    prometheus_factory: Callable[..., PrometheusServer],
    alertmanager_factory: Callable[..., AlertmanagerServer],
    webhook: WebhookReceiver,
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
    received = webhook.wait_for("AlwaysFiring", timeout=30)
    assert received[0]["labels"]["severity"] == "info"


@pytest.mark.prometheus
def test_prometheus_reports_a_bad_query_with_its_own_message(
    prometheus_factory: Callable[..., PrometheusServer],
) -> None:
    prometheus = prometheus_factory([])
    with pytest.raises(ValueError, match="parse error"):
        prometheus.query("sum(")
    assert prometheus.query("vector(3)")[0]["value"][1] == "3"


SPIN_THEN_WAIT = """
import sys, time
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
print("spun", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def python_running(script: str, says: bytes) -> Iterator[int]:
    """The pid of a Python process running `script`, once it has printed the line `says`."""
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == says
        yield process.pid
    finally:
        process.kill()  # a child of its own reads its stdin to the end, so it exits as well
        process.wait()


def test_cpu_seconds_counts_what_a_process_burned_not_its_wall_time() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with python_running(SPIN_THEN_WAIT, b"spun\n") as spinner:
            assert 0.45 <= cpu_seconds(spinner) < 5
        assert cpu_seconds(sleeper.pid) < 0.1
    finally:
        sleeper.kill()
        sleeper.wait()


# The main thread waits while a second thread spins.
SPIN_ON_A_THREAD = f"""
import threading
threading.Thread(target=exec, args=({SPIN_THEN_WAIT!r},)).start()
"""


def test_main_thread_cpu_seconds_leaves_out_the_other_threads() -> None:
    with python_running(SPIN_ON_A_THREAD, b"spun\n") as process:
        assert 0.45 <= cpu_seconds(process) < 5
        assert main_thread_cpu_seconds(process) < 0.2


# A parent that idles while one child spins and exits (reaped) and another spins and stays.
SPAWN_SPINNERS = f"""
import subprocess, sys
spin = {SPIN_THEN_WAIT!r}
subprocess.run([sys.executable, "-c", spin], input=b"", stdout=subprocess.DEVNULL, check=True)
live = subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
live.stdout.readline()
print("ready", flush=True)
sys.stdin.read()
"""


def test_tree_cpu_seconds_adds_live_and_exited_children_to_their_parent() -> None:
    with python_running(SPAWN_SPINNERS, b"ready\n") as parent:
        assert cpu_seconds(parent) < 0.4
        assert 0.95 <= tree_cpu_seconds(parent) < 10

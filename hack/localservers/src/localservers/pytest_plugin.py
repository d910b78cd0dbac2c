"""Pytest fixtures for real servers: PostgreSQL, Prometheus, Alertmanager, system binaries.

Under CI (CI=true) a missing binary fails the test with the install hint; elsewhere the test
is skipped with the same message, so a laptop without Prometheus can still run the rest.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

import pytest

from localservers import binaries
from localservers.postgres import PostgresServer
from localservers.prometheus import AlertmanagerServer, PrometheusServer


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(message: str) -> NoReturn:
    """A missing tool fails the test in CI and skips it elsewhere, saying what is missing."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_binary(name: str) -> Path:
    """The binary's path; fail (CI) or skip (elsewhere) with how to install it."""
    try:
        return binaries.require(name)
    except binaries.BinaryMissingError as error:
        unavailable(str(error))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; tests get their own databases."""
    require_binary("initdb")
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    if not postgres_server.running():  # a previous test stopped it and failed before restarting
        postgres_server.start()
    return postgres_server.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


class _Startable(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Startable)


def _started_servers(server_class: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """A factory that starts servers of one kind, and stops all it started afterwards."""
    started: list[S] = []

    def start(*args: Any, **kwargs: Any) -> S:
        server = server_class(*args, **kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def prometheus_factory() -> Iterator[Callable[..., PrometheusServer]]:
    """start(scrape_configs, rule_files=(), alertmanager_url=None, ...) -> a running Prometheus."""
    require_binary("prometheus")
    yield from _started_servers(PrometheusServer)


@pytest.fixture
def alertmanager_factory() -> Iterator[Callable[..., AlertmanagerServer]]:
    """start(webhook_url, group_wait="1s") -> a running Alertmanager."""
    require_binary("prometheus-alertmanager")
    yield from _started_servers(AlertmanagerServer)

"""Shared fixtures: one trained bundle per session, and apps on SQLite built from it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from credit_api.bundle import ModelBundle, save_bundle
from credit_api.config import Settings
from credit_api.main import create_app
from credit_api.runtime import Runtime
from credit_api.schemas import EXAMPLE_APPLICATION
from credit_api.training import train
from localservers.ports import free_port

from .api_process import ApiProcess, start_api


@pytest.fixture(scope="session")
def trained_bundle() -> ModelBundle:
    return train()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, trained_bundle: ModelBundle) -> Path:
    directory = tmp_path_factory.mktemp("models")
    save_bundle(trained_bundle, directory)
    return directory


@pytest.fixture
def application() -> dict[str, Any]:
    return dict(EXAMPLE_APPLICATION)


@pytest.fixture
def make_settings(model_dir: Path, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_dir": model_dir,
            "train_if_missing": False,
            "database_url": f"sqlite:///{tmp_path / 'predictions.db'}",
            "log_flush_interval_seconds": 0.05,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start the app (lifespan included) with settings overrides; stopped at test end."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@dataclass
class LiveServer:
    """The app served by a real uvicorn on a loopback port, in a thread of the test process."""

    app: FastAPI
    url: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful shutdown: the lifespan flushes the prediction log."""
        self.server.should_exit = True
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "uvicorn did not stop"


def start_live_server(settings: Settings) -> LiveServer:
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "uvicorn exited during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return LiveServer(app, f"http://127.0.0.1:{port}", port, server, thread)


@pytest.fixture
def make_server(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., LiveServer]]:
    """Serve the app with uvicorn on a free loopback port; stopped at test end."""
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        live = start_live_server(make_settings(**overrides))
        servers.append(live)
        return live

    yield start
    for live in servers:
        if live.thread.is_alive():
            live.stop()


@pytest.fixture(scope="module")
def module_server(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One live app (SQLite store) shared by a module's tests."""
    database = tmp_path_factory.mktemp("store") / "predictions.db"
    settings = Settings(
        model_dir=model_dir, train_if_missing=False, database_url=f"sqlite:///{database}"
    )
    live = start_live_server(settings)
    yield live
    live.stop()


@pytest.fixture
def make_api(model_dir: Path, tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    """Start `credit-api serve` in a process of its own, with settings overrides (by field
    name, as for Settings) and optionally a port; each start logs to its own file; all are
    killed at test end."""
    started: list[ApiProcess] = []

    def start(port: int | None = None, **overrides: Any) -> ApiProcess:
        settings: dict[str, Any] = {
            "model_dir": model_dir,
            "train_if_missing": False,
            "database_url": f"sqlite:///{tmp_path / 'predictions.db'}",
            "log_flush_interval_seconds": 0.05,
            **overrides,
        }
        env = {**os.environ}
        env.update({f"CREDIT_API_{name.upper()}": str(value) for name, value in settings.items()})
        api = start_api(env, tmp_path / f"api-{len(started)}.log", port)
        started.append(api)
        return api

    yield start
    for api in started:
        api.kill()

"""The product's own processes on loopback: the credit API and the operator."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from localservers.ports import free_port
from localservers.process import ServerProcess


def _entry_point(name: str) -> str:
    # The console scripts live next to the interpreter running us (the project's venv).
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: run `make setup`")
    return found


class CreditApi:
    """`credit-api serve` on a free loopback port, logging predictions to `database_url`."""

    def __init__(
        self,
        database_url: str,
        work_dir: Path,
        *,
        extra_env: Mapping[str, str] = {},
        app_factory: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "CREDIT_API_DATABASE_URL": database_url,
            "CREDIT_API_MODEL_DIR": str(work_dir / "models"),
            "CREDIT_API_LOG_FLUSH_INTERVAL_SECONDS": "0.1",
            **extra_env,
        }
        address = ["--host", "127.0.0.1", "--port", str(self.port)]
        argv = (
            [sys.executable, "-m", "uvicorn", "--factory", app_factory, "--workers", "1", *address]
            if app_factory
            else [_entry_point("credit-api"), "serve", *address]
        )
        self.process = ServerProcess(argv, work_dir / "credit-api.log", env=env)

    def start(self, timeout: float = 120.0) -> CreditApi:
        self.process.start()
        self.process.wait_until(
            lambda: httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200,
            timeout,
            "credit-api",
        )
        return self

    def stop(self) -> None:
        self.process.stop()


class Operator:
    """`modelmonitor run` with a kubeconfig (the chart's ServiceAccount token, so RBAC is real)."""

    def __init__(
        self, kubeconfig: Path, work_dir: Path, *, settings: Mapping[str, str] = {}
    ) -> None:
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        env = {
            **os.environ,
            **settings,
            "KUBECONFIG": str(kubeconfig),
            # the pod's ports are the pod's; here they must be free ones on loopback
            "MODELMONITOR_METRICS_PORT": str(self.metrics_port),
            "MODELMONITOR_HEALTH_PORT": str(self.health_port),
        }
        self.process = ServerProcess(
            [_entry_point("modelmonitor"), "run"], work_dir / "operator.log", env=env
        )

    def start(self, timeout: float = 60.0) -> Operator:
        self.process.start()
        self.process.wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2).is_success,
            timeout,
            "modelmonitor operator",
        )
        return self

    def stop(self) -> None:
        self.process.stop()


class ReportsUi:
    """The chart's Evidently UI container (`reports-ui`) as a process on a loopback port."""

    def __init__(self, argv: list[str], port: int, work_dir: Path, env: Mapping[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = ServerProcess(argv, work_dir / "reports-ui.log", env={**os.environ, **env})

    def start(self, timeout: float = 90.0) -> ReportsUi:
        self.process.start()
        self.process.wait_until(
            lambda: httpx.get(f"{self.url}/api/version", timeout=2).is_success,
            timeout,
            "reports-ui (the Evidently UI)",
        )
        return self

    def stop(self) -> None:
        self.process.stop()

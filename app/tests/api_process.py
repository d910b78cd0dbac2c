"""The API as the image runs it (`credit-api serve`), in a process of its own.

For what an in-process server cannot show: its resident memory, and what survives a SIGKILL
or a SIGTERM.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from localservers.ports import free_port
from localservers.process import ServerProcess


@dataclass
class ApiProcess:
    server: ServerProcess
    url: str

    @property
    def pid(self) -> int:
        pid = self.server.pid
        assert pid is not None
        return pid

    def resident_bytes(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def peak_resident_bytes(self) -> int:
        """The kernel's high-water mark of resident memory (VmHWM) since the last reset."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc/<pid>/status")

    def reset_peak(self) -> None:
        # Writing 5 to clear_refs resets the high-water mark to the current resident size.
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the process's /metrics (0 when the series is absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def kill(self) -> None:
        """SIGKILL, as an OOM kill would: no shutdown at all."""
        self.server.kill()

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, as the kubelet sends it; returns the exit status."""
        self.server.stop_signal = signal.SIGTERM
        self.server.stop(timeout)
        assert self.server.popen is not None
        return self.server.popen.returncode


def start_api(
    env: dict[str, str], log_path: Path, port: int | None = None, timeout: float = 120.0
) -> ApiProcess:
    """`credit-api serve` with `env` (CREDIT_API_* settings), on `port` (a free one by default),
    once it answers /readyz with a loaded model (the store may be down)."""
    port = port or free_port()
    server = ServerProcess(
        [sys.executable, "-m", "credit_api.cli", "serve", "--port", str(port)],
        log_path,
        env={**env, "CREDIT_API_HOST": "127.0.0.1"},
    )
    server.start()
    url = f"http://127.0.0.1:{port}"
    server.wait_until(
        lambda: httpx.get(f"{url}/readyz", timeout=2).json()["model_loaded"] is True,
        timeout,
        "credit-api serve",
    )
    return ApiProcess(server, url)

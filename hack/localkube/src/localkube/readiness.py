"""Waiting for a component to be ready, or reporting why it never was (with its log's end)."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from localkube.errors import ClusterStartError
from localkube.pki import ControlPlanePKI
from localkube.processes import RunningProcess, exit_code, is_running

READY_TIMEOUT_SECONDS = 180.0
LOG_TAIL_LINES = 30


def client_tls(pki: ControlPlanePKI) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.certificate))
    context.load_cert_chain(str(pki.admin.certificate), str(pki.admin.key))
    return context


def unverified_tls() -> ssl.SSLContext:
    # The controller manager serves /healthz with a certificate it made itself, on loopback.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def http_ok(url: str, tls: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5, context=tls) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False


def wait_until(ready: Callable[[], bool], process: RunningProcess, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        code = exit_code(process)
        if code is not None or not is_running(process):
            raise ClusterStartError(
                f"{process.name} exited (code {code}) before {what} was ready; "
                f"its log ({process.log}) ends with:\n{log_tail(process.log)}"
            )
        if ready():
            return
        time.sleep(0.25)
    raise ClusterStartError(
        f"{what} not ready after {READY_TIMEOUT_SECONDS:.0f}s; {process.name}'s log "
        f"({process.log}) ends with:\n{log_tail(process.log)}"
    )


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"

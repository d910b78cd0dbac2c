"""Paths of the pinned, cached binaries, built on first use. For chart tests (pyhelm3) and others.

Each call builds only what is missing; a cold Kubernetes build takes many minutes, and says so.
"""

from __future__ import annotations

from pathlib import Path

from localkube.build import (
    ETCD_SERVER,
    HELM_CLI,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBECTL,
    TILT_BINARY,
    Binary,
    Reporter,
    ensure_binaries,
    report_to_stderr,
)


def helm_binary(report: Reporter = report_to_stderr) -> Path:
    return _one(HELM_CLI, report)


def kubectl_binary(report: Reporter = report_to_stderr) -> Path:
    return _one(KUBECTL, report)


def etcd_binary(report: Reporter = report_to_stderr) -> Path:
    return _one(ETCD_SERVER, report)


def kube_apiserver_binary(report: Reporter = report_to_stderr) -> Path:
    return _one(KUBE_APISERVER, report)


def kube_controller_manager_binary(report: Reporter = report_to_stderr) -> Path:
    return _one(KUBE_CONTROLLER_MANAGER, report)


def tilt_binary(report: Reporter = report_to_stderr) -> Path:
    return _one(TILT_BINARY, report)


def _one(binary: Binary, report: Reporter) -> Path:
    return ensure_binaries((binary,), report)[binary.name]

"""Fixtures: settings, example monitors and the real tools the tests need."""

from __future__ import annotations

import pytest

from modelmonitor.settings import Settings
from modelmonitor.spec import Monitor

from .support import EXAMPLE, INVALID_CASES, monitor_from, require_tool


@pytest.fixture
def settings() -> Settings:
    """Fixed settings, whatever the environment of the test run says."""
    return Settings(
        namespaces=(),
        rule_labels={"release": "kube-prometheus-stack"},
        dashboard_label={"grafana_dashboard": "1"},
        drift_image="registry.example/drift-job:1.0",
        drift_image_pull_policy="IfNotPresent",
    )


@pytest.fixture
def example_monitor() -> Monitor:
    return monitor_from(EXAMPLE)


@pytest.fixture
def promtool() -> str:
    return require_tool("promtool")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "invalid_case" in metafunc.fixturenames:
        metafunc.parametrize(
            "invalid_case", INVALID_CASES, ids=[case["mistake"] for case in INVALID_CASES]
        )

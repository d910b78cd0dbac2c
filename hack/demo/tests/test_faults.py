"""The fault switch makes the real app fail predictions with 500s, counted by its own metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from demo.faults import FAULT_FILE_ENV, create_app
from demo.traffic import normal_traffic


def test_predictions_fail_while_the_fault_file_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = tmp_path / "fault"
    monkeypatch.setenv(FAULT_FILE_ENV, str(fault))
    monkeypatch.setenv("CREDIT_API_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CREDIT_API_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    application = normal_traffic(1)[0]
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        assert client.post("/api/v1/predict", json=application).status_code == 200
        fault.touch()
        assert client.post("/api/v1/predict", json=application).status_code == 500
        fault.unlink()
        assert client.post("/api/v1/predict", json=application).status_code == 200
        metrics = client.get("/metrics").text
    failed = [
        line
        for line in metrics.splitlines()
        if line.startswith("credit_api_requests_total{") and 'status="500"' in line
    ]
    assert len(failed) == 1
    assert 'route="/api/v1/predict"' in failed[0]  # failed after routing, as an incident would
    assert failed[0].endswith(" 1.0")

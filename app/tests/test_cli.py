from __future__ import annotations

import json
from pathlib import Path

import pytest

from credit_api.bundle import load_bundle
from credit_api.cli import main


def test_train_writes_a_loadable_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model-dir", str(tmp_path), "--version", "7"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == "7"
    assert report["metrics"]["roc_auc"] >= 0.75
    bundle = load_bundle(tmp_path, "credit-score", "7")
    assert bundle.metrics == report["metrics"]


def test_train_reads_the_model_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CREDIT_API_MODEL_DIR", str(tmp_path))
    assert main(["train"]) == 0
    assert load_bundle(tmp_path, "credit-score", "1").version == "1"
    capsys.readouterr()


def test_invalid_settings_are_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CREDIT_API_PORT", "not-a-port")
    assert main(["serve"]) == 2
    assert "port" in capsys.readouterr().err

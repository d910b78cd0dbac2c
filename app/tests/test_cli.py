from __future__ import annotations

import json
from pathlib import Path

import pytest

from credit_api.bundle import load_bundle
from credit_api.cli import main
from credit_api.config import Settings


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


def test_help_lists_every_setting_with_its_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CREDIT_API_DATABASE_URL", "postgresql://api:s3cret@store/predictions")
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    for name, field in Settings.model_fields.items():
        assert f"CREDIT_API_{name.upper()} (default: " in help_text
        assert field.description
        assert field.description in help_text
    assert "CREDIT_API_LOG_STATEMENT_TIMEOUT_SECONDS (default: 30.0)" in help_text
    assert "CREDIT_API_ACCESS_LOG (default: false)" in help_text
    # Defaults only: the environment's values (a password in the URL) are never printed.
    assert "s3cret" not in help_text

"""The drift-job CLI against a real SQLite store: verdicts, exit codes and one-line messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from drift_job.cli import main
from localservers.ports import free_port

from .conftest import MODEL, Store


def _run(
    store: Store, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any] | None, str]:
    code = main(["--store-url", store.url, "--model", MODEL, "--output", "json", *extra])
    captured = capsys.readouterr()
    document = json.loads(captured.out) if captured.out.strip() else None
    return code, document, captured.err


def _halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    mask = np.random.default_rng(seed).random(len(frame)) < 0.5
    return frame[mask], frame[~mask]


def test_drift_between_age_groups_is_found(
    store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    store.register(german_credit[german_credit.age_in_years < 40])
    store.add_predictions(german_credit[german_credit.age_in_years >= 40])
    code, document, _ = _run(store, capsys, "--min-rows", "100")
    assert code == 0
    assert document is not None
    assert document["result"] == "Completed"
    assert document["reason"] == "DatasetDrift"
    assert document["datasetDrift"] is True
    assert document["rows"]["current"] == 299
    assert document["rows"]["sampled"] is False
    features = {f["name"]: f for f in document["features"]}
    assert features["age_in_years"]["drifted"] is True
    assert features["age_in_years"]["stattest"] == "K-S p_value"
    assert document["driftedColumns"] == sum(f["drifted"] for f in features.values())


def test_a_random_half_is_not_dataset_drift(
    sqlite_store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = _halves(german_credit, seed=1)
    sqlite_store.register(reference)
    sqlite_store.add_predictions(current)
    code, document, _ = _run(sqlite_store, capsys)
    assert code == 0
    assert document is not None
    assert document["reason"] == "NoDrift"
    assert document["datasetDrift"] is False


def test_a_large_window_is_sampled_to_the_reference_size_and_stays_quiet(
    store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    """5000 predictions from the reference's own population: no drift, a sample compared."""
    store.register(german_credit.sample(800, random_state=3))
    store.add_predictions(german_credit.sample(5000, replace=True, random_state=4))
    code, document, _ = _run(store, capsys)
    assert code == 0
    assert document is not None
    assert document["datasetDrift"] is False
    assert document["rows"]["current"] == 5000
    assert document["rows"]["sampled"] is True
    assert 600 < document["rows"]["compared"] < 1000  # a Bernoulli draw of about 800


def test_a_feature_missing_from_the_window_counts_as_drifted(
    sqlite_store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = _halves(german_credit, seed=2)
    sqlite_store.register(reference)
    sqlite_store.add_predictions(current.drop(columns=["telephone"]))
    code, document, _ = _run(sqlite_store, capsys)
    assert code == 0
    assert document is not None
    features = {f["name"]: f for f in document["features"]}
    assert features["telephone"] == {
        "name": "telephone",
        "stattest": "missing in current data",
        "drifted": True,
    }
    assert "no values in the window for telephone" in document["message"]


def test_too_few_rows_is_insufficient_data(
    sqlite_store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_store.register(german_credit)
    sqlite_store.add_predictions(german_credit[:50])
    code, document, err = _run(sqlite_store, capsys, "--min-rows", "200")
    assert code == 3
    assert document is not None
    assert document["result"] == "InsufficientData"
    assert err.strip().splitlines() == [
        "drift-job: InsufficientData: 50 predictions of credit-score version 1 in the last 1h; "
        "at least 200 needed"
    ]


def test_an_empty_window_is_insufficient_data_even_with_min_rows_zero(
    sqlite_store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_store.register(german_credit)
    sqlite_store.add_predictions(german_credit[:300], age=timedelta(hours=3))
    code, document, _ = _run(sqlite_store, capsys, "--min-rows", "0", "--window", "1h")
    assert code == 3
    assert document is not None
    assert document["message"].startswith("0 predictions")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--numerical-columns", "salary"], "--numerical-columns: model credit-score has no"),
        (["--method", "magic"], "--method: unknown method 'magic'"),
        (["--column-method", "purpose=ks"], "--column-method: ks cannot test the categorical"),
        (["--column-threshold", "nope=0.1"], "--column-threshold: 'nope' is not one of"),
        (["--window", "an hour"], "--window: 'an hour' is not a duration"),
        (["--drift-share", "1.5"], "--drift-share: Input should be less than or equal to 1"),
        (["--min-rows", "10", "--max-rows", "5"], "min_rows (10) is above max_rows (5)"),
        (["--monitor", "credit"], "monitor and namespace go together"),
        (["--output", "yaml"], "argument --output: invalid choice"),
    ],
)
def test_bad_configuration_exits_2_naming_the_flag(
    sqlite_store: Store,
    german_credit: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    named: str,
) -> None:
    sqlite_store.register(german_credit)
    sqlite_store.add_predictions(german_credit)
    code, _, err = _run(sqlite_store, capsys, *flags)
    assert code == 2
    assert named in err
    assert "Traceback" not in err


def test_an_unregistered_model_is_reference_missing_after_retries(
    sqlite_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document, err = _run(sqlite_store, capsys, "--retries", "2", "--retry-delay", "0.01")
    assert code == 4
    assert document is not None
    assert document["reason"] == "ReferenceMissing"
    missing = "no version of model 'credit-score' is registered in the store"
    assert err.strip().splitlines() == [
        f"drift-job: {missing} (attempt 1 of 3); retrying in 0.0s",
        f"drift-job: {missing} (attempt 2 of 3); retrying in 0.0s",
        f"drift-job: ReferenceMissing: {missing}",
    ]


def test_an_unregistered_version_names_it(
    sqlite_store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_store.register(german_credit)
    code, _, err = _run(sqlite_store, capsys, "--model-version", "7", "--retries", "0")
    assert code == 4
    assert "version 7 of model 'credit-score' is not registered in the store" in err


def test_an_unreachable_store_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'store.db'}"
    code = main(["--store-url", url, "--model", MODEL, "--retries", "1", "--retry-delay", "0"])
    err = capsys.readouterr().err
    assert code == 4
    assert (
        err.strip().splitlines()[-1].startswith("drift-job: StoreUnavailable: store unavailable:")
    )
    assert "Traceback" not in err


def test_a_missing_sqlite_file_is_named_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store.db"
    code = main(["--store-url", f"sqlite:///{store}", "--model", MODEL, "--retries", "0"])
    err = capsys.readouterr().err
    assert code == 4
    assert err.strip().splitlines()[-1] == (
        f"drift-job: StoreUnavailable: store unavailable: the SQLite store {store} does not "
        "exist; credit-api creates it when it starts (is --store-url the API's "
        "CREDIT_API_DATABASE_URL?)"
    )
    assert not store.exists()


def test_the_installed_command_answers_in_one_line(tmp_path: Path) -> None:
    """The console script the CronJob runs: no traceback, the contract's exit code."""
    script = Path(sys.executable).parent / "drift-job"
    env = {**os.environ, "DRIFT_STORE_URL": f"sqlite:///{tmp_path / 'missing' / 'x.db'}"}
    finished = subprocess.run(
        [str(script), "--model", MODEL, "--retries", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 4
    assert "Traceback" not in finished.stderr
    assert finished.stderr.strip().splitlines()[-1].startswith("drift-job: StoreUnavailable:")


def _kubeconfig_for(server: str, path: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(json.dumps(config))
    return path


def test_an_unreachable_kubernetes_api_exits_4_and_still_prints_the_result(
    sqlite_store: Store, german_credit: pd.DataFrame, tmp_path: Path
) -> None:
    """The console script with --monitor and a Kubernetes API on a closed port: one line that
    says so, the result on stdout, exit 4, no traceback (lightkube's transport is httpx2)."""
    sqlite_store.register(german_credit[german_credit.age_in_years < 40])
    sqlite_store.add_predictions(german_credit[german_credit.age_in_years >= 40])
    closed = f"https://127.0.0.1:{free_port()}"
    kubeconfig = _kubeconfig_for(closed, tmp_path / "kubeconfig")
    script = Path(sys.executable).parent / "drift-job"
    finished = subprocess.run(
        [str(script), "--store-url", sqlite_store.url, "--model", MODEL, "--min-rows", "100",
         "--output", "json", "--monitor", "credit-score", "--namespace", "risk"],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        timeout=300,
        check=False,
    )  # fmt: skip
    assert finished.returncode == 4, finished.stderr
    assert "Traceback" not in finished.stderr
    (line,) = [x for x in finished.stderr.splitlines() if "Kubernetes" in x]
    assert line.startswith(
        "drift-job: cannot reach the Kubernetes API to write the status of modelmonitor "
        "risk/credit-score: "
    )
    assert "connect" in line.lower()
    result = json.loads(finished.stdout)
    assert result["result"] == "Completed"
    assert result["datasetDrift"] is True


def test_help_shows_the_defaults_and_every_exit_code() -> None:
    script = Path(sys.executable).parent / "drift-job"
    env = {**os.environ, "DRIFT_STORE_URL": "postgresql://drift:s3cret@store/predictions"}
    finished = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert finished.returncode == 0, finished.stderr
    help_text = " ".join(finished.stdout.split())  # argparse wraps to the terminal's width
    for default in ("(default: 1h)", "(default: 200)", "(default: 50000)", "(default: 0.5)"):
        assert default in help_text
    exit_codes = help_text.split("exit codes:")[1].split()
    assert [word for word in exit_codes if word.isdigit()] == ["0", "1", "2", "3", "4"]
    # The store URL comes from the environment and may carry a password: never printed.
    assert "s3cret" not in help_text


def test_reports_are_saved_and_referenced(
    sqlite_store: Store,
    german_credit: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    reference, current = _halves(german_credit, seed=5)
    sqlite_store.register(reference)
    sqlite_store.add_predictions(current)
    reports = tmp_path / "reports"
    code, document, _ = _run(
        sqlite_store, capsys, "--report-dir", str(reports), "--keep-reports", "3"
    )
    assert code == 0
    assert document is not None
    html, saved_json = Path(document["report"]["html"]), Path(document["report"]["json"])
    assert html.parent == reports
    assert html.name.startswith("drift-credit-score-")
    assert html.stat().st_size > 100_000  # the renderer is embedded
    assert json.loads(saved_json.read_text())["metrics"]

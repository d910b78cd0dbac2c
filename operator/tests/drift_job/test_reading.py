"""Reading the store: typed columns, database-side sampling, retries through an outage."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from drift_job.config import build_config
from drift_job.job import run_job
from drift_job.reading import (
    ReferenceMissingError,
    StoreUnavailableError,
    load_model,
    read_reference,
    read_window,
)
from localservers.postgres import PostgresServer
from prediction_store import FeatureSpec

from .conftest import MODEL, Store, feature_specs


def _window(store: Store, specs: tuple[FeatureSpec, ...], max_rows: int) -> pd.DataFrame:
    model = load_model(store.engine, MODEL, None)
    end = datetime.now(UTC)
    window = read_window(
        store.engine, model, end - timedelta(hours=1), end, specs, max_rows=max_rows
    )
    assert window.total_rows == len(window.frame) or window.sampled
    return window.frame


def test_columns_come_back_typed_alike_on_both_stores(
    store: Store, german_credit: pd.DataFrame
) -> None:
    store.register(german_credit)
    current = german_credit[:100].copy()
    current.loc[current.index[:10], "credit_amount"] = float("nan")
    store.add_predictions(current)
    specs = feature_specs(german_credit)
    frame = _window(store, specs, max_rows=1000)
    assert len(frame) == 100
    for spec in specs:
        expected = "float64" if spec.kind == "numerical" else "object"
        assert frame[spec.name].dtype == expected, spec.name
    assert frame["credit_amount"].isna().sum() == 10
    assert sorted(frame["credit_amount"].dropna()) == sorted(current["credit_amount"].dropna())
    assert set(frame["purpose"]) == set(current["purpose"])
    reference = read_reference(store.engine, load_model(store.engine, MODEL, None), specs)
    assert len(reference) == 1000
    pd.testing.assert_series_equal(
        reference["age_in_years"], german_credit["age_in_years"], check_names=False
    )


def test_numbers_read_as_categories_are_the_same_strings_on_both_stores(store: Store) -> None:
    frame = pd.DataFrame({"rating": ["1", "2", "3"] * 10, "amount": [1.0, 2.5, 3.0] * 10})
    store.register(frame)
    # A writer that sends the category as a JSON number rather than a string.
    store.add_predictions(pd.DataFrame({"rating": [1, 2, 3] * 5, "amount": [1, 2, 3] * 5}))
    read = _window(
        store, (FeatureSpec("rating", "categorical"), FeatureSpec("amount", "numerical")), 100
    )
    assert sorted(set(read["rating"])) == ["1", "2", "3"]
    assert read["amount"].dtype == "float64"


def test_a_large_window_is_sampled_in_the_database(
    store: Store, german_credit: pd.DataFrame
) -> None:
    store.register(german_credit)
    store.add_predictions(german_credit.sample(4000, replace=True, random_state=1))
    frame = _window(store, feature_specs(german_credit), max_rows=400)
    assert 300 < len(frame) < 500  # a Bernoulli draw with p = 0.1


def test_predictions_outside_the_window_or_of_another_model_are_not_read(
    store: Store, german_credit: pd.DataFrame
) -> None:
    store.register(german_credit)
    store.register(german_credit, model="other")
    store.add_predictions(german_credit[:30])
    store.add_predictions(german_credit[:40], age=timedelta(hours=2))
    store.add_predictions(german_credit[:50], model="other")
    assert len(_window(store, feature_specs(german_credit), max_rows=1000)) == 30


def test_the_latest_version_is_the_default(store: Store, german_credit: pd.DataFrame) -> None:
    store.register(german_credit, version="1")
    store.register(german_credit[:500], version="2")
    assert load_model(store.engine, MODEL, None).version == "2"
    assert load_model(store.engine, MODEL, "1").reference_rows == 1000
    with pytest.raises(ReferenceMissingError):
        load_model(store.engine, MODEL, "3")


@pytest.mark.postgres
def test_a_store_outage_is_store_unavailable(
    postgres_store: Store, postgres_server: PostgresServer, german_credit: pd.DataFrame
) -> None:
    postgres_store.register(german_credit)
    postgres_server.stop()
    try:
        with pytest.raises(StoreUnavailableError):
            load_model(postgres_store.engine, MODEL, None)
        config = build_config(
            store_url=postgres_store.url, model=MODEL, retries=1, retry_delay_seconds=0.1
        )
        outcome = run_job(config)
        assert outcome.exit_code == 4
        assert outcome.reason == "StoreUnavailable"
        assert "\n" not in outcome.message
        # The URL (it may hold a password) never appears in what the job says.
        url = sa.make_url(postgres_store.url)
        assert url.render_as_string(hide_password=False) not in outcome.message
        assert not url.password or str(url.password) not in outcome.message
    finally:
        postgres_server.start()


@pytest.mark.postgres
def test_the_job_rides_out_a_short_outage(
    postgres_store: Store, postgres_server: PostgresServer, german_credit: pd.DataFrame
) -> None:
    postgres_store.register(german_credit[:500])
    postgres_store.add_predictions(german_credit[500:])
    postgres_server.stop()
    restarter = threading.Timer(1.0, postgres_server.start)
    restarter.start()
    try:
        started = time.monotonic()
        config = build_config(
            store_url=postgres_store.url, model=MODEL, retries=4, retry_delay_seconds=1.0
        )
        outcome = run_job(config)
    finally:
        restarter.join()
    assert outcome.exit_code == 0, outcome.message
    assert outcome.result == "Completed"
    assert time.monotonic() - started >= 1.0

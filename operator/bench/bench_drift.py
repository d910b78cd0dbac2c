"""The drift job end to end against plain Evidently on the full window (`make bench-drift`).

A real PostgreSQL (localservers) holds one registered model per window size: a 20,000-row
reference of 25 columns (15 numerical, 10 categorical) and a current window of 10k, 100k or
1M predictions in which four columns are shifted by a known amount and the rest are drawn from
the reference's distributions. For each window it runs, as separate processes (so each peak
RSS is its own):

* the job: the `drift-job` command (read from PostgreSQL with sampling in the database,
  Evidently, save the JSON and HTML reports), end to end including interpreter start-up;
* plain Evidently: the whole window read into pandas and `Report([DataDriftPreset()])` over
  all of it (bounded by --plain-timeout);
* the job judging everything: the same command with the quality from ground truth (a fifth of
  the window's predictions have an outcome) and fairness over three protected attributes (a
  categorical one as is, one with its categories gathered, a numerical one in bins), printed
  on a line of its own beside the drift-only run.

Every prediction carries a score and a decision (scores drawn uniformly; outcomes drawn with
the score as their probability, so the score is calibrated and ranks well); the reference
carries the model's outputs too, so the output drift runs in both job runs.

It prints wall seconds, CPU seconds (user + system, steadier on a shared machine) and peak RSS
for each, the speed-up, and whether the runs find exactly the known shifts. Targets: the 1M
window in <= 20 s and <= 1 GiB, drift only and with quality and fairness; >= 6x faster than
plain Evidently, the same per-column verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from localservers.postgres import PostgresServer
from prediction_store import (
    FeatureSpec,
    ModelRegistration,
    ReferenceOutput,
    create_store_engine,
    register_model,
    upgrade,
)

REFERENCE_ROWS = 20_000
NUMERICAL = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = [f"cat_{i:02d}" for i in range(10)]
# The known shifts: what a correct drift verdict must find, and nothing else.
SHIFTED = {"num_00", "num_01", "cat_00", "cat_01"}
_CATEGORIES = [[f"c{j}" for j in range(3 + i % 6)] for i in range(len(CATEGORICAL))]
_CHUNK = 200_000
LABELLED_SHARE = 0.2
# Three protected attributes: cat_02 (each category its own group), cat_03 (its categories
# gathered into two groups), num_02 (durations or ages from 0 to 59, in three bins).
FAIRNESS = {
    "favourableDecision": "good",
    "minRowsPerGroup": 30,
    "attributes": [
        {"feature": "cat_02", "reference": "c0"},
        {
            "feature": "cat_03",
            "reference": "low",
            "groups": [
                {"name": "low", "values": ["c0", "c1", "c2"]},
                {"name": "high", "values": ["c3", "c4", "c5"]},
            ],
        },
        {
            "feature": "num_02",
            "reference": "middle",
            "bins": [
                {"name": "young", "below": 25},
                {"name": "middle", "below": 50},
                {"name": "old"},
            ],
        },
    ],
}


def generate(rows: int, seed: int, *, shifted: bool) -> pd.DataFrame:
    """Columns drawn from fixed distributions; with shifted=True the four known shifts apply."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i, name in enumerate(NUMERICAL):
        if i % 3 == 0:
            data[name] = rng.normal(10 * i, 1 + i, rows)
        elif i % 3 == 1:
            data[name] = np.round(rng.lognormal(7.5, 0.8, rows))  # amounts, like credit_amount
        else:
            data[name] = rng.integers(0, 60, rows).astype(float)  # durations, ages
    for name, categories in zip(CATEGORICAL, _CATEGORIES, strict=True):
        weights = np.linspace(1, 2, len(categories))
        data[name] = rng.choice(categories, rows, p=weights / weights.sum())
    frame = pd.DataFrame(data)
    if shifted:
        frame["num_00"] += 0.5  # half its standard deviation
        frame["num_01"] *= 1.5  # amounts half as large again
        reversed_weights = np.linspace(2, 1, len(_CATEGORIES[0]))
        frame["cat_00"] = rng.choice(
            _CATEGORIES[0], rows, p=reversed_weights / reversed_weights.sum()
        )
        unseen = rng.random(rows) < 0.3  # a category the reference never had
        frame.loc[unseen, "cat_01"] = "new"
    return frame


def specs() -> tuple[FeatureSpec, ...]:
    return tuple(FeatureSpec(n, "numerical") for n in NUMERICAL) + tuple(
        FeatureSpec(n, "categorical") for n in CATEGORICAL
    )


def fill_store(server: PostgresServer, sizes: list[int]) -> str:
    url = server.create_database("bench")
    engine = create_store_engine(url)
    upgrade(engine)
    reference = generate(REFERENCE_ROWS, seed=1, shifted=False)
    records = reference.to_dict(orient="records")
    scores = np.random.default_rng(2).random(REFERENCE_ROWS)
    outputs = [ReferenceOutput(float(s), "bad" if s >= 0.5 else "good") for s in scores]
    for size in sizes:
        registration = ModelRegistration(
            f"bench-{size}",
            "1",
            specs(),
            records,
            decision_shares={"good": 0.5, "bad": 0.5},
            positive_class="bad",
            decision_threshold=0.5,
            reference_outputs=outputs,
        )
        register_model(engine, registration)
    engine.dispose()
    with psycopg.connect(server.libpq_dsn("bench"), autocommit=True) as connection:
        connection.execute("CREATE UNLOGGED TABLE staging (features jsonb)")
        for size in sizes:
            for start in range(0, size, _CHUNK):
                chunk = generate(min(_CHUNK, size - start), seed=size + start, shifted=True)
                _copy_features(connection, chunk)
            connection.execute(
                """
                INSERT INTO predictions
                SELECT md5(random()::text || clock_timestamp()::text),
                       now() - random() * interval '50 minutes', %s, '1', features, score,
                       CASE WHEN score >= 0.5 THEN 'bad' ELSE 'good' END
                FROM (SELECT features, random() AS score FROM staging) AS scored
                """,
                (f"bench-{size}",),
            )
            connection.execute("TRUNCATE staging")
            # A fifth of the predictions get their outcome, drawn with the score as its chance.
            connection.execute(
                """
                INSERT INTO feedback
                SELECT request_id, CASE WHEN random() < score THEN 'bad' ELSE 'good' END, now()
                FROM predictions WHERE model = %s AND random() < %s
                """,
                (f"bench-{size}", LABELLED_SHARE),
            )
        connection.execute("ANALYZE predictions")
        connection.execute("ANALYZE feedback")
    return url


def _copy_features(connection: psycopg.Connection[Any], frame: pd.DataFrame) -> None:
    # pandas writes the JSON lines in C; CSV quoting carries them through COPY unchanged.
    lines = frame.to_json(orient="records", lines=True).splitlines()
    body = "".join('"' + line.replace('"', '""') + '"\n' for line in lines)
    with connection.cursor().copy("COPY staging (features) FROM STDIN (FORMAT csv)") as copy:
        copy.write(body)


@dataclass(frozen=True)
class Measured:
    wall: float
    cpu: float
    peak_rss_mib: float
    drifted: set[str] | None  # None: it did not finish in time
    rows_compared: int | None = None
    log: str = ""
    judged: str = ""  # what the quality and fairness found, when asked


def measure(command: list[str], timeout: float) -> Measured:
    """Run a command; its own wall time, CPU time and peak RSS, and its verdicts.

    CPU time comes from wait4. The peak RSS is the kernel's high-water mark (VmHWM) read
    while the process runs: wait4's ru_maxrss would start from this (large) process's RSS at
    fork time.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        deadline = started + timeout
        peak_kib = 0
        while True:
            peak_kib = max(peak_kib, _high_water_kib(process.pid))
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                return Measured(time.monotonic() - started, _cpu(usage), peak_kib / 1024, None)
            time.sleep(0.02)
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            sys.exit(f"{command[0]} failed ({process.returncode}): {err.read().decode()[-2000:]}")
        document = json.loads(out.read())
        log = err.read().decode()
    drifted = {f["name"] for f in document["features"] if f["drifted"]}
    compared = document.get("rows", {}).get("compared")
    return Measured(wall, _cpu(usage), peak_kib / 1024, drifted, compared, log, _judged(document))


def _judged(document: dict[str, Any]) -> str:
    quality, fairness = document.get("quality"), document.get("fairness")
    if quality is None or fairness is None:
        return ""
    rows = quality["rows"]
    return (
        f"quality: {rows['compared']:,} of {rows['labelled']:,} labelled"
        f" (coverage {quality['labelCoverage']:.2f}), ROC AUC {quality.get('rocAuc', 0):.3f},"
        f" Brier {quality.get('brierScore', 0):.3f}; fairness: {fairness['verdict']}"
        f" over {len(fairness['attributes'])} attributes"
    )


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _high_water_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def plain_evidently(url: str, model: str) -> None:
    """The baseline, in its own process: the whole window into pandas, Evidently over all of it."""
    import warnings  # noqa: PLC0415 - only the baseline process needs these
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from evidently import DataDefinition, Dataset, Report  # noqa: PLC0415
    from evidently.presets import DataDriftPreset  # noqa: PLC0415

    from drift_job.normalise import columns_from_snapshot  # noqa: PLC0415
    from drift_job.reading import load_model, read_reference, read_window  # noqa: PLC0415

    engine = create_store_engine(url)
    registered = load_model(engine, model, None)
    end = datetime.now(UTC)
    window = read_window(engine, registered, end - timedelta(hours=1), end, specs(), max_rows=10**9)
    reference = read_reference(engine, registered, specs())
    definition = DataDefinition(numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(window.frame, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
    features = [
        {"name": c.name, "drifted": c.drifted} for c in columns_from_snapshot(snapshot.dict())
    ]
    print(json.dumps({"features": features, "rows": {"compared": len(window.frame)}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--max-rows", type=int, default=50_000)
    parser.add_argument("--plain-timeout", type=float, default=900.0)
    parser.add_argument(
        "--plain-evidently", nargs=2, metavar=("URL", "MODEL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.plain_evidently:
        plain_evidently(*args.plain_evidently)
        return

    # A SIGTERM still stops the PostgreSQL server (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(size) for size in args.sizes.split(",")]
    drift_job = str(Path(sys.executable).parent / "drift-job")
    server = PostgresServer()
    server.start()
    try:
        started = time.monotonic()
        url = fill_store(server, sizes)
        filled = time.monotonic() - started
        print(f"filled PostgreSQL with {sum(sizes):,} predictions in {filled:.0f}s", flush=True)
        print(f"reference {REFERENCE_ROWS:,} rows x 25 columns; known shifts: {sorted(SHIFTED)}")
        header = (
            f"{'rows':>9} | {'job s':>6} {'cpu s':>6} {'RSS MiB':>8} {'compared':>8} | "
            f"{'plain s':>7} {'cpu s':>6} {'RSS MiB':>8} | {'speed-up wall cpu':>13} | verdicts"
        )
        print(header)
        print("-" * len(header))
        with tempfile.TemporaryDirectory() as reports:
            for size in sizes:
                model = f"bench-{size}"
                command = [
                    drift_job, "--store-url", url, "--model", model, "--window", "1h",
                    "--min-rows", "100", "--max-rows", str(args.max_rows),
                    "--report-dir", reports, "--keep-reports", "2", "--output", "json",
                ]  # fmt: skip
                job = measure(command, timeout=600)
                judging = measure(
                    [*command, "--quality", "--quality-window", "1h",
                     "--fairness", json.dumps(FAIRNESS)],
                    timeout=600,
                )  # fmt: skip
                plain = measure(
                    [sys.executable, __file__, "--plain-evidently", url, model],
                    timeout=args.plain_timeout,
                )
                print(_row(size, job, plain), flush=True)
                for line in job.log.splitlines():
                    print(f"{'':>9} |   {line}", flush=True)
                print(_judged_row(judging), flush=True)
                for line in judging.log.splitlines():
                    print(f"{'':>9} |   {line}", flush=True)
    finally:
        server.destroy()


def _judged_row(job: Measured) -> str:
    """The run with quality and fairness, under the drift-only run of the same window."""
    verdict = "known shifts" if job.drifted == SHIFTED else f"differs: {sorted(job.drifted or ())}"
    return (
        f"{'+ q&f':>9} | {job.wall:6.1f} {job.cpu:6.1f} {job.peak_rss_mib:8.0f} "
        f"{job.rows_compared or 0:>8,} | drift: {verdict}; {job.judged}"
    )


def _row(size: int, job: Measured, plain: Measured) -> str:
    def verdict(found: set[str] | None) -> str:
        if found is None:
            return "timed out"
        return "known shifts" if found == SHIFTED else f"differs: {sorted(found ^ SHIFTED)}"

    plain_wall = f"{plain.wall:7.1f}" if plain.drifted is not None else f">{plain.wall:6.0f}"
    speedup = plain.wall / job.wall
    cpu_speedup = plain.cpu / job.cpu
    return (
        f"{size:>9,} | {job.wall:6.1f} {job.cpu:6.1f} {job.peak_rss_mib:8.0f} "
        f"{job.rows_compared or 0:>8,} | {plain_wall} {plain.cpu:6.1f} {plain.peak_rss_mib:8.0f} | "
        f"{'>' if plain.drifted is None else ''}{speedup:5.1f}x {cpu_speedup:5.1f}x | "
        f"job: {verdict(job.drifted)}; plain: {verdict(plain.drifted)}"
    )


if __name__ == "__main__":
    main()

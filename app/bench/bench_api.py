"""Throughput and latency of the credit API against its baselines (`make bench-api`).

Starts PostgreSQL (a throwaway server), trains the model bundle into a temporary directory,
then serves three variants with one uvicorn worker each on loopback and drives them with wrk:

- full:  the service as deployed: request metrics and the prediction log to PostgreSQL;
- bare:  the same service with metrics and the prediction log turned off;
- naive: the same model behind prometheus-fastapi-instrumentator defaults, scoring with the
         scikit-learn pipeline and inserting each prediction synchronously (naive_app.py).

It prints requests/s, p50/p99 latency, the server's CPU per request (all its threads, and the
event-loop thread's alone), PostgreSQL's (all its processes, whichever variant's work they
do meanwhile) and wrk's (whether the load generator left the server short of requests) per
variant and concurrency, the ratios the service aims for (full >= 0.85x bare
and >= 1.3x naive throughput; p99 <= 15 ms at 32 connections), the single-row scoring cost of
the pipeline against the compiled scorer, and the memory a full prediction-log queue keeps
resident per record against the record's encoded size.

What is measured is the service, as deployed: the load and the database come from other
machines. Here they share the machine, so by default the servers get the first CPU (the
prediction log's writer thread with them, so its cost counts) and wrk and PostgreSQL the
others, and wrk runs at real-time priority, so that neither the store's work nor waiting
behind it is charged to the service (`realtime_launcher`); `--share-cpus` and
`--load-at-normal-priority` measure without either. Figures stay noisy on a shared machine:
the variants take turns round after round, in an order that rotates, and full/bare is the
median of each round's own ratio (the two ran seconds apart), with the range beside it.

`--instructions` counts instead (valgrind's callgrind, in_process.py): the instructions one
prediction costs in the bare service, with metrics, with the prediction log and with both, on
the event-loop thread and on all threads. Counts repeat to within a few hundred instructions
between runs, so they show what a change to the request path costs where timings cannot.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from credit_api.bundle import save_bundle
from credit_api.data import load_german_credit
from credit_api.schemas import EXAMPLE_APPLICATION
from credit_api.scoring import compile_linear_scorer
from credit_api.training import train
from localservers.binaries import require
from localservers.ports import free_port
from localservers.postgres import PostgresServer
from localservers.process import cpu_seconds, main_thread_cpu_seconds, tree_cpu_seconds
from prediction_store import count_predictions, create_store_engine, upgrade

BENCH_DIR = Path(__file__).resolve().parent
TARGET_VS_BARE = 0.85
TARGET_VS_NAIVE = 1.3
TARGET_P99_SECONDS = 0.015
LOAD_REALTIME_PRIORITY = 10  # SCHED_FIFO, for wrk (realtime_launcher)
QUEUE_MEMORY_RECORDS = 20_000  # the service's default bound
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass(frozen=True)
class Run:
    variant: str
    connections: int
    requests_per_second: float
    p50: float
    p99: float
    requests: int
    errors: int
    cpu_per_request: float  # the server process's CPU seconds (all threads) per request
    loop_cpu_per_request: float  # ... of its first thread alone, which runs the event loop
    store_cpu_per_request: float  # PostgreSQL's (all its processes) during the run, per request
    load_cpu_per_request: float  # wrk's own, per request
    round: int = 0


def scoring_cost(repeat: int = 2000) -> tuple[float, float]:
    """Seconds per single-row score: the pipeline on a DataFrame, the compiled scorer."""
    bundle = train()
    features = load_german_credit().drop(columns=["creditability"])
    scorer = compile_linear_scorer(bundle.pipeline)
    scorer.check_against(bundle.pipeline, features)
    row = dict(EXAMPLE_APPLICATION)
    start = time.perf_counter()
    for _ in range(repeat // 10):
        bundle.pipeline.predict_proba(pd.DataFrame([row]))
    pipeline_cost = (time.perf_counter() - start) / (repeat // 10)
    start = time.perf_counter()
    for _ in range(repeat * 10):
        scorer.score_one(row)
    scorer_cost = (time.perf_counter() - start) / (repeat * 10)
    return pipeline_cost, scorer_cost


def print_queue_memory(records: int) -> None:
    """What a full prediction-log queue keeps resident per record (queue_memory.py)."""
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / "queue_memory.py"), str(records)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout)
    resident, encoded = figures["resident_per_record"], figures["encoded_size"]
    print(
        f"prediction log queue, {records} records held (the store down):"
        f" {resident:.0f} bytes resident per record of {encoded} encoded"
        f" ({resident / encoded:.2f}x)"
    )


def serve(
    target: list[str], env: dict[str, str], port: int, cpus: set[int] | None
) -> subprocess.Popen[bytes]:
    # taskset (util-linux) pins before the interpreter starts, so every thread inherits it.
    pinned = [] if cpus is None else ["taskset", "--cpu-list", ",".join(map(str, sorted(cpus)))]
    command = [
        *pinned, sys.executable, "-m", "uvicorn", *target,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--no-access-log", "--log-level", "warning",
        "--loop", "uvloop", "--http", "httptools",
    ]  # fmt: skip
    process = subprocess.Popen(command, env={**os.environ, **env})
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/predict", timeout=1).status_code:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{target} did not start")
        time.sleep(0.2)


BARE_ENV = {"CREDIT_API_METRICS_ENABLED": "false", "CREDIT_API_PREDICTION_LOG_ENABLED": "false"}
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "full": (["credit_api.main:create_app", "--factory"], {}),
    "bare": (["credit_api.main:create_app", "--factory"], BARE_ENV),
    "naive": (["naive_app:create_app", "--factory", "--app-dir", str(BENCH_DIR)], {}),
}


def service_env(work: Path, database_url: str, extra: dict[str, str]) -> dict[str, str]:
    """A variant's settings: the bundle trained into `work`, its own database."""
    return {
        "CREDIT_API_MODEL_DIR": str(work / "models"),
        "CREDIT_API_DATABASE_URL": database_url,
        "CREDIT_API_TRAIN_IF_MISSING": "false",
        **extra,
    }


def wrk(
    port: int, connections: int, seconds: int, script: Path, launcher: Sequence[str] = ()
) -> dict[str, Any]:
    result = subprocess.run(
        [
            *launcher,
            str(require("wrk")),
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/api/v1/predict",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_wrk(result.stdout)


def choose_launcher(*, normal_priority: bool) -> tuple[str, ...]:
    launcher = () if normal_priority else realtime_launcher()
    if launcher:
        print(
            f"wrk at real-time priority (SCHED_FIFO {LOAD_REALTIME_PRIORITY}): it waits for nobody"
        )
    elif normal_priority:
        print("wrk at normal priority: it may wait behind PostgreSQL, the server idling meanwhile")
    else:
        print("wrk at normal priority (chrt is missing or refused real-time priority)")
    return launcher


def realtime_launcher() -> tuple[str, ...]:
    """The `chrt` command that starts wrk at real-time priority; () where that is refused.

    wrk stands in for clients on other machines, but here it shares the cores with
    PostgreSQL: at normal priority it waited behind the store's insert bursts (on the run
    queue 5-6% of the time with the full app, 1% with the bare one) while the server, short
    of requests, sat idle (4.5-5% of its CPU, against 1.2%). At real-time priority it waits
    for nobody and the full app's server idles no more than the bare one's; wrk needs about a
    fifth of a CPU, so the server and PostgreSQL keep the rest.
    """
    chrt = shutil.which("chrt")
    if chrt is None:
        return ()
    launcher = (chrt, "--fifo", str(LOAD_REALTIME_PRIORITY))
    allowed = subprocess.run([*launcher, "true"], capture_output=True, check=False)
    return launcher if allowed.returncode == 0 else ()


def parse_wrk(output: str) -> dict[str, Any]:
    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if match is None:
            raise ValueError(f"no {percent}% latency in wrk output:\n{output}")
        return float(match.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[match.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if rps is None or total is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    return {
        "requests_per_second": float(rps.group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "requests": int(total.group(1)),
        "errors": int(errors.group(1)) if errors else 0,
    }


def scraped_predictions(port: int) -> int:
    """Predictions the service counted, from its own /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "credit_api_predictions"
            for sample in family.samples
            if sample.name == "credit_api_predictions_total"
        )
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(2)  # SIGINT: graceful shutdown, the prediction log flushes
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# Variants of the service for --instructions: which of metrics and the prediction log are on.
COUNTED_VARIANTS: dict[str, dict[str, str]] = {
    "bare": BARE_ENV,
    "metrics": {"CREDIT_API_PREDICTION_LOG_ENABLED": "false"},
    "log": {"CREDIT_API_METRICS_ENABLED": "false"},
    "full": {},
}


@dataclass(frozen=True)
class Counted:
    variant: str
    loop_thread: float  # instructions per request on the thread running the event loop
    all_threads: float  # ... and on every thread (the prediction log's writer among them)


def callgrind_totals(out_file: Path) -> tuple[int, int]:
    """(first thread, all threads) instructions of a --separate-threads=yes run."""
    per_thread = []
    for part in sorted(out_file.parent.glob(f"{out_file.name}-*")):
        summary = re.search(r"^summary:\s+(\d+)", part.read_text(), re.MULTILINE)
        if summary is None:
            raise ValueError(f"no summary line in {part}")
        per_thread.append(int(summary.group(1)))
    if not per_thread:
        raise ValueError(f"callgrind wrote no {out_file}-* files")
    return per_thread[0], sum(per_thread)


def count_instructions(variant: str, envs: dict[int, dict[str, str]], work: Path) -> Counted:
    """Instructions per request: a run of N requests against a warm-up-only run, divided by N.

    `envs` maps each run's request count (0 and N) to its settings: each its own database,
    or the runs, side by side, would race to register the model and do different work.
    """
    runs: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}
    for count, env in envs.items():  # both at once: one per core
        out_file = work / f"callgrind.{variant}.{count}"
        command = [
            str(require("valgrind")), "--tool=callgrind", "--separate-threads=yes",
            f"--callgrind-out-file={out_file}",
            sys.executable, str(BENCH_DIR / "in_process.py"), str(count),
        ]  # fmt: skip
        # A fixed hash seed: the same dict and set layouts, so the same work in each run. One
        # OpenBLAS thread: its idle workers spin for a while after training, differently in
        # each run, and no prediction uses them (one row is scored in plain Python).
        run_env = {**os.environ, **env, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
        runs[count] = (
            subprocess.Popen(command, env=run_env, stderr=subprocess.DEVNULL),
            out_file,
        )
    totals = {}
    for count, (process, out_file) in runs.items():
        if process.wait() != 0:
            raise RuntimeError(f"{variant}: in_process.py {count} failed under callgrind")
        totals[count] = callgrind_totals(out_file)
    (_, (short_loop, short_all)), (requests, (long_loop, long_all)) = sorted(totals.items())
    return Counted(variant, (long_loop - short_loop) / requests, (long_all - short_all) / requests)


def instructions_main(requests: int) -> int:
    require("valgrind")
    work = Path(tempfile.mkdtemp(prefix="bench-api-instructions-"))
    save_bundle(train(), work / "models")
    postgres = PostgresServer()
    postgres.start()
    counted: list[Counted] = []
    try:
        for variant, extra_env in COUNTED_VARIANTS.items():
            envs = {}
            for count in (0, requests):
                url = postgres.create_database(f"count_{variant}_{count}")
                upgrade(create_store_engine(url))
                envs[count] = {
                    **service_env(work, url, extra_env),
                    "CREDIT_API_LOG_LEVEL": "warning",
                }
            counted.append(count_instructions(variant, envs, work))
            print(
                f"{variant:>7}: {counted[-1].loop_thread:9,.0f} instructions per request on the"
                f" event-loop thread, {counted[-1].all_threads:9,.0f} on all threads",
                flush=True,
            )
    finally:
        postgres.destroy()
    bare = counted[0]
    print(f"\ninstructions per request against bare ({requests} requests, in process):")
    for run in counted[1:]:
        print(
            f"  {run.variant:>7}: +{run.all_threads - bare.all_threads:7,.0f} "
            f"(loop thread +{run.loop_thread - bare.loop_thread:7,.0f}); "
            f"{run.variant}/bare {bare.all_threads / run.all_threads:.3f}x "
            "(as throughput, were requests bound by instructions alone)"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=9, help="runs per variant (median kept)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per variant")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--share-cpus",
        action="store_true",
        help="let the servers, wrk and PostgreSQL share every CPU (by default the servers "
        "get the first one and wrk and PostgreSQL the others, as when the load and the "
        "database come from other machines)",
    )
    parser.add_argument(
        "--load-at-normal-priority",
        action="store_true",
        help="run wrk at normal priority, where it waits behind PostgreSQL's work "
        "(by default it runs at real-time priority when the system allows it)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under callgrind instead of serving (valgrind)",
    )
    parser.add_argument(
        "--requests", type=int, default=4000, help="requests counted per variant (--instructions)"
    )
    args = parser.parse_args()
    if args.instructions:
        return instructions_main(args.requests)
    server_cpus = None if args.share_cpus else pin_load_elsewhere()
    launcher = choose_launcher(normal_priority=args.load_at_normal_priority)

    pipeline_cost, scorer_cost = scoring_cost()
    print("single-row scoring (same model, outputs verified equal on all 1000 rows):")
    print(f"  sklearn pipeline.predict_proba(1-row DataFrame): {pipeline_cost * 1e6:8.1f} us")
    print(f"  compiled linear scorer:                          {scorer_cost * 1e6:8.1f} us")
    print_queue_memory(QUEUE_MEMORY_RECORDS)

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    save_bundle(train(), work / "models")
    script = work / "predict.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(EXAMPLE_APPLICATION)))
    postgres = PostgresServer()
    postgres.start()
    assert postgres.pid is not None
    postgres_pid = postgres.pid
    servers: dict[str, tuple[int, subprocess.Popen[bytes], str]] = {}
    runs: list[Run] = []
    try:
        for variant, (target, extra_env) in VARIANTS.items():
            url = postgres.create_database(f"bench_{variant}")
            upgrade(create_store_engine(url))
            env = service_env(work, url, extra_env)
            port = free_port()
            servers[variant] = (port, serve(target, env, port, server_cpus), url)
            wrk(port, 8, args.warmup, script, launcher)
        # Variants take turns, round after round, so a burst of load elsewhere on the
        # machine hits all of them rather than one; the median of the rounds is kept. The
        # order rotates each round: no variant always runs after the full app's inserts
        # (PostgreSQL's checkpoints and vacuum land on whoever comes next).
        for connections in args.connections:
            for round_ in range(args.rounds):
                for variant in rotated(list(servers), round_):
                    port, process, _url = servers[variant]
                    load = Load(port, connections, args.seconds, script, launcher)
                    runs.append(measure(variant, round_, load, process.pid, postgres_pid))
            for variant in servers:
                print_median(variant, connections, runs)
        port, _process, url = servers["full"]
        counted = scraped_predictions(port)
    finally:
        for _port, process, _url in servers.values():
            stop(process)
    print(f"\nfull: {count_predictions(url)} predictions stored of {counted} made")
    postgres.destroy()
    print_summary(runs)
    return 0


@dataclass(frozen=True)
class Load:
    """One wrk run: where, how many connections, how long, with which request."""

    port: int
    connections: int
    seconds: int
    script: Path
    launcher: Sequence[str] = ()  # what wrk's command line starts with (realtime_launcher)


def measure(variant: str, round_: int, load: Load, server_pid: int, postgres_pid: int) -> Run:
    """Drive one server with wrk; its figures and the CPU it and PostgreSQL used meanwhile."""
    cpu_before = cpu_seconds(server_pid)
    loop_cpu_before = main_thread_cpu_seconds(server_pid)
    store_cpu_before = tree_cpu_seconds(postgres_pid)
    load_cpu_before = children_cpu_seconds()
    figures = wrk(load.port, load.connections, load.seconds, load.script, load.launcher)
    requests = figures["requests"]
    return Run(
        variant,
        load.connections,
        **figures,
        cpu_per_request=(cpu_seconds(server_pid) - cpu_before) / requests,
        loop_cpu_per_request=(main_thread_cpu_seconds(server_pid) - loop_cpu_before) / requests,
        store_cpu_per_request=(tree_cpu_seconds(postgres_pid) - store_cpu_before) / requests,
        load_cpu_per_request=(children_cpu_seconds() - load_cpu_before) / requests,
        round=round_,
    )


def children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children: around a wrk run, wrk's."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pin_load_elsewhere() -> set[int] | None:
    """Give the servers the first CPU and move this process (so wrk and PostgreSQL) off it.

    Separates the service's own cost from the load generator's and the database's, which
    otherwise take turns on the same CPUs. The prediction log's writer thread stays on the
    server's CPU, so its cost still counts.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("one CPU only: the servers share it with wrk and PostgreSQL")
        return None
    os.sched_setaffinity(0, set(cpus[1:]))
    print(f"servers on CPU {cpus[0]}; wrk and PostgreSQL on CPU {', '.join(map(str, cpus[1:]))}")
    return {cpus[0]}


def rotated(variants: list[str], by: int) -> list[str]:
    shift = by % len(variants)
    return variants[shift:] + variants[:shift]


def paired_ratios(connections: int, runs: list[Run]) -> list[float]:
    """full/bare throughput round by round: each pair ran within seconds of each other."""
    full = {r.round: r for r in rounds_of("full", connections, runs)}
    bare = {r.round: r for r in rounds_of("bare", connections, runs)}
    return [
        full[n].requests_per_second / bare[n].requests_per_second
        for n in sorted(full.keys() & bare.keys())
    ]


def rounds_of(variant: str, connections: int, runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.variant == variant and r.connections == connections]


def median_run(variant: str, connections: int, runs: list[Run]) -> Run:
    mine = rounds_of(variant, connections, runs)
    return Run(
        variant,
        connections,
        statistics.median(r.requests_per_second for r in mine),
        statistics.median(r.p50 for r in mine),
        statistics.median(r.p99 for r in mine),
        sum(r.requests for r in mine),
        sum(r.errors for r in mine),
        statistics.median(r.cpu_per_request for r in mine),
        statistics.median(r.loop_cpu_per_request for r in mine),
        statistics.median(r.store_cpu_per_request for r in mine),
        statistics.median(r.load_cpu_per_request for r in mine),
    )


def print_median(variant: str, connections: int, runs: list[Run]) -> None:
    run = median_run(variant, connections, runs)
    rates = [r.requests_per_second for r in rounds_of(variant, connections, runs)]
    print(
        f"{variant:>5} c={connections:<3} {run.requests_per_second:8.0f} req/s"
        f" ({min(rates):.0f}-{max(rates):.0f})"
        f"  p50 {run.p50 * 1e3:7.2f} ms  p99 {run.p99 * 1e3:7.2f} ms"
        f"  cpu {run.cpu_per_request * 1e6:5.0f} us/req"
        f" (event loop {run.loop_cpu_per_request * 1e6:3.0f})"
        f"  store cpu {run.store_cpu_per_request * 1e6:4.0f} us/req"
        f"  wrk cpu {run.load_cpu_per_request * 1e6:3.0f} us/req"
        f"  ({run.requests} requests, non-2xx {run.errors})",
        flush=True,
    )


def print_summary(runs: list[Run]) -> None:
    print(
        "\nratios (same run; noisy on shared cores). full/bare is the median of the rounds'"
        " own ratios\n(each full run against the bare run of its round), with their range and"
        " the ratio of the medians:"
    )
    for connections in sorted({r.connections for r in runs}):
        full, bare, naive = (median_run(v, connections, runs) for v in ("full", "bare", "naive"))
        paired = paired_ratios(connections, runs)
        vs_naive = full.requests_per_second / naive.requests_per_second
        cpu_vs_bare = full.cpu_per_request / bare.cpu_per_request
        loop_vs_bare = full.loop_cpu_per_request / bare.loop_cpu_per_request
        line = (
            f"  c={connections:<3} full/bare {statistics.median(paired):4.2f}x"
            f" ({min(paired):.2f}-{max(paired):.2f};"
            f" medians {full.requests_per_second / bare.requests_per_second:4.2f}x)"
            f" (target >= {TARGET_VS_BARE})"
            f"  full/naive {vs_naive:4.2f}x (target >= {TARGET_VS_NAIVE})"
            f"  server CPU per request full/bare {cpu_vs_bare:4.2f}x"
            f" (event-loop thread {loop_vs_bare:4.2f}x)"
        )
        if connections == 32:
            line += f"  full p99 {full.p99 * 1e3:.1f} ms (target <= {TARGET_P99_SECONDS * 1e3:.0f})"
        print(line)


if __name__ == "__main__":
    sys.exit(main())

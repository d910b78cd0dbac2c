"""The prediction log: a bounded queue of prediction records, written in batches by a thread.

The request path only encodes its record and appends it to an in-memory queue (microseconds,
never blocks on I/O). A background thread prepares the store (schema migration, model
registration), then takes up to `batch_size` records at a time, waiting at most
`flush_interval` for a batch to fill, and inserts them in one statement, on a connection of
its own that it holds between batches (and pings when idle). Writes are idempotent (`ON
CONFLICT DO NOTHING` on the request id), so a batch whose commit succeeded but whose
acknowledgement was lost can be retried safely, and a spooled batch replayed.

With a spool (`credit_api.spool`, on local disk), a store outage does not hold records in
memory: a batch the store cannot take is appended to the spool (durable before it counts as
kept), and so is every batch after it while the store is down or the spool has a backlog; the
thread retries the store with backoff, then drains the spool oldest first before writing
anything newer. At start it adopts the spools of processes that ended (a SIGKILL, an OOM kill,
a shutdown during an outage) and drains them before its own records; their drop counts carry
on in this process's counters. On shutdown, what the store cannot take in time is spooled.

Nothing is lost silently:
- the queue holds at most `max_queue` records, counting a batch being retried; a record that
  does not fit is dropped with reason `queue_full` (counted, and logged at most every 10 s);
- a batch that fails on a connection error is retried with exponential backoff for as long
  as it takes (or spooled), while new records queue up behind it within the bound;
- a record the database refuses (not a connection error) is retried alone a few times and then
  dropped with reason `rejected`, as is one that cannot be encoded (a caller's bug);
- a batch the spool cannot take (at its size cap, or refused by the disk) is dropped as
  `spool_full`; records of a spool frame found cut short or damaged, as `spool_corrupt`;
- on shutdown the queue is flushed for up to a deadline; what remains is spooled, or without
  a spool dropped as `shutdown`.
So every record submitted is written, spooled, counted as dropped, or still queued. With a
spool, the drop counts are kept in its header too, and the next process in the pod carries on
from them (see `credit_api.spool`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from credit_api.batch_insert import (
    EncodedRecord,
    PredictionRow,
    batch_insert_for,
    encode_record,
    record_prefix,
    request_id_of,
    writer_connection,
)
from credit_api.metrics import DROP_REASONS, Metrics
from credit_api.spool import Frame, Spool

log = logging.getLogger(__name__)

# A refused record is retried alone this many times before it is dropped as `rejected`.
REJECT_AFTER_ATTEMPTS = 3
DROP_LOG_INTERVAL_SECONDS = 10.0
FIRST_BACKOFF_SECONDS = 0.05
# How often the writer looks for spools of processes that ended (sharing a volume, a process
# may end after this one started).
ADOPT_INTERVAL_SECONDS = 30.0


@dataclass(frozen=True)
class SpoolSettings:
    directory: Path
    max_bytes: int


def is_connection_error(error: BaseException) -> bool:
    """Errors worth retrying forever: the database is down, restarting or unreachable."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError)


def is_refusal(error: BaseException) -> bool:
    """The database answered and refused the statement (bad data, a constraint, the schema):
    the connection is as usable as before, in autocommit or after the rollback."""
    return isinstance(
        error, sa.exc.DataError | sa.exc.IntegrityError | sa.exc.ProgrammingError
    ) and not is_connection_error(error)


class Settle(Protocol):
    def __call__(
        self, records: Sequence[EncodedRecord], *, written: int = 0, rejected: int = 0
    ) -> None: ...


class PredictionLogWriter:
    """Bounded, batched, non-blocking writer of prediction records to the prediction store."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        setup: Callable[[sa.Engine], object] = lambda _engine: None,
        metrics: Metrics | None = None,
        max_queue: int = 20_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        retry_max: float = 5.0,
        health_interval: float = 5.0,
        statement_timeout: float | None = None,
        spool: SpoolSettings | None = None,
    ) -> None:
        self._engine = engine
        self._setup = setup
        self._metrics = metrics
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_max = retry_max
        self._health_interval = health_interval
        self._statement_timeout = statement_timeout
        # A session with its own statement timeout is never handed back to the shared pool.
        self._discard_connection = statement_timeout is not None and engine.dialect.name in (
            "postgresql",
            "sqlite",
        )
        self._insert = batch_insert_for(engine.dialect.name)

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the worker waits for records
        self._progress = threading.Condition(self._lock)  # flushers wait for batches
        self._queue: deque[EncodedRecord] = deque()
        self._in_flight: list[EncodedRecord] = []
        self._flush_requested = False
        self._stopping = False
        self._deadline = float("inf")
        self._abandoned = False
        self._thread: threading.Thread | None = None
        self._connection: sa.Connection | None = None  # the worker's own, between batches
        self._first_setup_done = threading.Event()
        self._spool_settings = spool
        self._spool: Spool | None = None  # opened by the worker thread
        self._spool_ready = threading.Event()
        self._next_adoption = 0.0

        self.submitted = 0
        self.written = 0
        self.spooled = 0  # records this process appended to the spool
        self.drained = 0  # records written from the spool (counted in `written` too)
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.inherited_drops: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.store_ready = False
        self.store_up = False
        self.last_error: str | None = None
        self._unlogged_drops = 0
        self._last_drop_log = 0.0
        if metrics is not None:
            metrics.track_queue_depth(lambda: self.depth)
            metrics.track_store(lambda: self.store_up)

    # -- the request path ------------------------------------------------------------------

    def submit(self, records: Sequence[PredictionRow]) -> int:
        """Queue records for writing; returns how many were accepted (the rest are dropped).

        Called once per prediction, so the usual case is a few plain statements: no
        generator, no property, no per-record index (`is_pending` scans instead; it serves
        feedback, which is rare).
        """
        count = len(records)
        try:
            encoded = (
                [encode_record(records[0])] if count == 1 else list(map(encode_record, records))
            )
        except TypeError:  # orjson's JSONEncodeError is one
            encoded = self._encodable(records)
        with self._lock:
            queue = self._queue
            queued = len(queue)
            self.submitted += count
            if self._stopping or queued + len(self._in_flight) + len(encoded) > self._max_queue:
                accepted = self._accept_within_bound(encoded)
            else:
                queue.extend(encoded)
                accepted = len(encoded)
            # Wake the writer when it waits for a first record or for a full batch.
            if accepted and (queued == 0 or queued < self._batch_size <= queued + accepted):
                self._work.notify()
            reason = "shutdown" if self._stopping else "queue_full"
        if len(encoded) < count:
            self._count_dropped("rejected", count - len(encoded))
        if accepted < len(encoded):
            self._count_dropped(reason, len(encoded) - accepted)
        return accepted

    @staticmethod
    def _encodable(records: Sequence[PredictionRow]) -> list[EncodedRecord]:
        """The records that encode; the others are logged (submit counts them as `rejected`)."""
        encoded = []
        for record in records:
            try:
                encoded.append(encode_record(record))
            except TypeError as error:
                log.error("dropping record %s that cannot be encoded: %s", record[0], error)
        return encoded

    def _accept_within_bound(self, records: list[EncodedRecord]) -> int:
        """Queue what fits under the bound (nothing once stopping); the caller holds the lock."""
        room = 0 if self._stopping else self._max_queue - self.depth
        accepted = max(0, min(room, len(records)))
        self._queue.extend(records[:accepted])
        return accepted

    @property
    def depth(self) -> int:
        """Records accepted and not yet written or dropped."""
        return len(self._queue) + len(self._in_flight)

    def is_pending(self, request_id: str) -> bool:
        """Whether the record of `request_id` is accepted and not yet written or dropped."""
        with self._lock:
            return self._holds(request_id)

    def _holds(self, request_id: str) -> bool:
        """A scan of what is queued and in flight (at most the queue bound); under the lock."""
        prefix = record_prefix(request_id)
        return any(record.startswith(prefix) for record in self._in_flight) or any(
            record.startswith(prefix) for record in self._queue
        )

    def flush_record(self, request_id: str, timeout: float) -> bool:
        """Hurry the batch holding `request_id` and wait until it leaves the queue.

        Returns False when it is still queued after `timeout` (the store is down or slow).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flush_requested = True
            self._work.notify()
            while self._holds(request_id):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(remaining)
        return True

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def wait_for_store(self, timeout: float) -> bool:
        """Wait for the first attempt to prepare the store; True when the store is ready.

        Lets a normal start create the schema before serving, without ever blocking a
        start on a store that is down (its failure ends the wait as well).
        """
        self._first_setup_done.wait(timeout)
        return self.store_ready

    def wait_for_spool(self, timeout: float) -> bool:
        """Wait until the worker has opened the spool (and adopted what earlier processes
        left); True when it has (or there is none to open)."""
        return self._spool_settings is None or self._spool_ready.wait(timeout)

    @property
    def spool_backlog(self) -> bool:
        """Records wait in the spool: a prediction may be made and not yet in the store."""
        spool = self._spool
        return spool is not None and spool.backlog

    def stop(self, timeout: float) -> None:
        """Flush what is queued for up to `timeout` seconds; spool the rest, or without a spool
        drop (and count) it."""
        with self._lock:
            self._stopping = True
            self._deadline = time.monotonic() + timeout
            self._work.notify()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
            if self._thread.is_alive():
                # Stuck inside a database call: give up on everything still held.
                with self._lock:
                    self._abandoned = True
                    left = list(self._in_flight) + list(self._queue)
                    self._queue.clear()
                    self._in_flight = []
                self._keep_or_drop(left, "shutdown")
        if self._spool is not None:
            self._spool.close()  # writes the drop counts; releases its files to the next process
        self._flush_drop_log(force=True)
        log.info(
            "prediction log stopped: %d written (%d from the spool), %d spooled, dropped %s",
            self.written,
            self.drained,
            self.spooled,
            self.dropped,
        )

    # -- the worker thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._open_spool()
            self._write_until_stopped()
        finally:
            self._close_connection()

    def _write_until_stopped(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            self._keep_spool()
            if not self.store_ready or self.spool_backlog:
                if self._done_waiting():
                    self._give_up_queued()  # a spool's backlog waits for the next process
                    return
                if not self._catch_up():
                    backoff = self._wait(backoff)
                    continue
                backoff = FIRST_BACKOFF_SECONDS
                continue
            batch = self._next_batch(self._health_interval)
            if batch is None:
                return
            if not batch:
                self._health_check()
                continue
            backoff = FIRST_BACKOFF_SECONDS
            while batch and not self._write(batch):
                if self._spool is not None:
                    self._spool_in_flight()  # it waits on disk, and what follows behind it
                    break
                if self._past_deadline():
                    self._give_up_queued()
                    return
                backoff = self._wait(backoff)
                # Retry only what is still unsettled (a one-by-one pass may have written some).
                batch = self._in_flight

    def _done_waiting(self) -> bool:
        """Whether to stop waiting for the store: stopping with a spool to keep the rest (or
        with nothing left), or past the shutdown deadline."""
        stopping = self._stopping and (self._spool is not None or self.depth == 0)
        return stopping or self._past_deadline()

    def _catch_up(self) -> bool:
        """Prepare the store when it is not, then write the spool's oldest frame (oldest first:
        the spool goes to the store before anything newer). False when the store cannot take
        it now."""
        if not self.store_ready:
            prepared = self._try(self._prepare_store)
            self._first_setup_done.set()
            if not prepared:
                return False
        if self.spool_backlog:
            if not self._drain_oldest():
                return False
            self._spool_full_batches()
        return True

    def _next_batch(self, wait: float) -> list[EncodedRecord] | None:
        """Up to batch_size records; [] after waiting `wait` for a first one; None when
        finished."""
        with self._lock:
            if not self._queue:
                if self._stopping:
                    return None
                self._work.wait(wait)
                if not self._queue:
                    return None if self._stopping else []
            # Let a batch fill, unless it is full, someone waits for it, or we are stopping.
            linger_until = time.monotonic() + self._flush_interval
            while (
                len(self._queue) < self._batch_size
                and not self._flush_requested
                and not self._stopping
            ):
                remaining = linger_until - time.monotonic()
                if remaining <= 0:
                    break
                self._work.wait(remaining)
            self._flush_requested = False
            return self._take_batch()

    def _take_batch(self) -> list[EncodedRecord]:
        """Move up to batch_size queued records in flight; under the lock."""
        if len(self._queue) <= self._batch_size:
            self._in_flight = list(self._queue)
            self._queue.clear()
        else:
            self._in_flight = [self._queue.popleft() for _ in range(self._batch_size)]
        return self._in_flight

    # -- the spool ------------------------------------------------------------------------------

    def _open_spool(self) -> None:
        """Open the spool and adopt what processes before this one left (before any record of
        this one is written, so theirs go first). Without it the log keeps records in memory."""
        settings = self._spool_settings
        try:
            if settings is not None:
                try:
                    self._spool = Spool(settings.directory, settings.max_bytes)
                except OSError as error:
                    log.error(
                        "cannot open the spool in %s (records wait in memory): %s",
                        settings.directory,
                        error,
                    )
                    return
                self._adopt_orphans()
                if self._metrics is not None:
                    spool = self._spool
                    self._metrics.track_spool(
                        lambda: spool.size_bytes, lambda: spool.pending_records
                    )
        finally:
            self._spool_ready.set()

    def _adopt_orphans(self) -> None:
        assert self._spool is not None
        try:
            added = self._spool.adopt_orphans()
        except OSError as error:
            log.error("cannot adopt the spools in %s: %s", self._spool.directory, error)
            added = {}
        self._next_adoption = time.monotonic() + ADOPT_INTERVAL_SECONDS
        for reason, count in added.items():
            self.inherited_drops[reason] = self.inherited_drops.get(reason, 0) + count
            if self._metrics is not None:
                self._metrics.log_dropped.labels(reason).inc(count)
        if any(added.values()):
            log.warning("prediction records dropped by earlier processes: %s", added)

    def _keep_spool(self) -> None:
        """Between batches: write drop counts to the spool's header; look for orphans."""
        spool = self._spool
        if spool is None:
            return
        try:
            spool.persist_drops()
        except OSError as error:
            log.error("cannot write the spool's drop counts: %s", error)
        if time.monotonic() >= self._next_adoption and not self._stopping:
            self._adopt_orphans()

    def _spool_in_flight(self) -> None:
        """The batch in flight goes to the spool (or is dropped as `spool_full`)."""
        with self._lock:
            batch = self._in_flight
        if batch:
            self._keep_or_drop(batch, "spool_full")
            with self._lock:
                if self._in_flight is batch:
                    self._in_flight = []
                self._progress.notify_all()

    def _spool_full_batches(self) -> None:
        """While the spool has a backlog, full batches of new records join it (behind the
        backlog, so the order holds, and out of memory); smaller ones wait for it to drain."""
        while True:
            with self._lock:
                if len(self._queue) < self._batch_size:
                    return
                self._take_batch()
            self._spool_in_flight()

    def _give_up_queued(self) -> None:
        """Stopping, or past the deadline: what is held goes to the spool, or is dropped."""
        while True:
            with self._lock:
                if not self._in_flight:
                    if not self._queue:
                        return
                    self._take_batch()
            if self._spool is None:
                self._drop_everything()
                return
            self._spool_in_flight()

    def _keep_or_drop(self, records: list[EncodedRecord], reason: str) -> None:
        """Append `records` to the spool; without one, or when it refuses them, drop them
        as `reason` (`spool_full` when the spool refused)."""
        if not records:
            return
        spool = self._spool
        if spool is None:
            self._count_dropped(reason, len(records))
            return
        if spool.append(records):
            with self._lock:
                self.spooled += len(records)
        else:
            self._count_dropped("spool_full", len(records))

    def _wait(self, backoff: float) -> float:
        """Wait `backoff` (with jitter) before trying the store again, or less when the
        shutdown deadline comes first. With a spool, the batches that form meanwhile go to it,
        so memory stays flat however long the store is down; without one they wait in the
        queue. Returns the next backoff."""
        end = time.monotonic() + backoff * (0.5 + random.random())
        if self._spool is None:
            with self._lock:
                # New records wake the condition too; they must not cut the backoff short.
                while (remaining := min(end, self._deadline) - time.monotonic()) > 0:
                    self._work.wait(remaining)
        else:
            while (remaining := end - time.monotonic()) > 0 and not self._stopping:
                if self._in_flight:
                    self._spool_in_flight()
                batch = self._next_batch(remaining)
                if batch:
                    self._spool_in_flight()
                elif batch is None:
                    break
        return min(backoff * 2, self._retry_max)

    def _drain_oldest(self) -> bool:
        """Write the spool's oldest frame; False when the store cannot take it now."""
        spool = self._spool
        assert spool is not None
        try:
            frame, damaged = spool.oldest()
        except OSError as error:
            log.error("cannot read the spool: %s", error)
            return False
        if damaged:
            self.dropped["spool_corrupt"] += damaged
            if self._metrics is not None:
                self._metrics.log_dropped.labels("spool_corrupt").inc(damaged)
        if frame is None:
            return True
        if not self._write_frame(frame):
            return False
        spool.drained(frame)
        return True

    def _write_frame(self, frame: Frame) -> bool:
        """Insert a spooled batch; True when settled (written, or its refused records
        dropped)."""
        records = frame.records
        try:
            self._insert_rows(records)
        except Exception as error:  # see _write
            if is_connection_error(error):
                self._store_failed(error)
                return False
            log.warning("store refused a spooled batch (%s); writing one by one", error)
            return self._write_one_by_one(list(records), self._settle_spooled)
        self._settle_spooled(records, written=len(records))
        return True

    def _settle_spooled(
        self, records: Sequence[EncodedRecord], *, written: int = 0, rejected: int = 0
    ) -> None:
        with self._lock:
            self.written += written
            self.drained += written
        if written and self._metrics is not None:
            self._metrics.log_written.inc(written)
        if rejected:
            self._count_dropped("rejected", rejected)

    # -- writing -------------------------------------------------------------------------------

    def _write(self, batch: list[EncodedRecord]) -> bool:
        """Insert the batch; True when it is settled (written or rejected), False to retry."""
        try:
            self._insert_rows(batch)
        except Exception as error:  # the worker must survive anything a record can cause
            if is_connection_error(error):
                self._store_failed(error)
                return False
            log.warning("store refused a batch of %d (%s); writing one by one", len(batch), error)
            return self._write_one_by_one(batch, self._settle)
        self._settle(batch, written=len(batch))
        return True

    def _write_one_by_one(self, batch: list[EncodedRecord], settle: Settle) -> bool:
        while batch:
            record = batch[0]
            for attempt in range(1, REJECT_AFTER_ATTEMPTS + 1):
                try:
                    self._insert_rows([record])
                except Exception as error:  # see _write
                    if is_connection_error(error):
                        self._store_failed(error)
                        return False  # the rest is retried as a batch
                    if attempt == REJECT_AFTER_ATTEMPTS:
                        log.error(
                            "dropping record %s refused by the store: %s",
                            request_id_of(record),
                            error,
                        )
                        settle([record], rejected=1)
                else:
                    settle([record], written=1)
                    break
            batch = batch[1:]
        return True

    def _insert_rows(self, batch: list[EncodedRecord]) -> None:
        self._on_connection(lambda connection: self._insert(connection, batch))
        self._store_ok()

    def _on_connection(self, action: Callable[[sa.Connection], None]) -> None:
        """Run `action` on the writer's own connection, opening one when there is none.

        A connection held since an earlier batch may have died in between (the server
        restarted, an idle timeout): then the action runs once more on a fresh one, as a
        pool's pre-ping would, rather than counting an outage. Retrying an insert is safe:
        it skips request ids already stored. A statement that failed on a live connection
        (a timeout, a lock) is not run again at once: that is the store's trouble to report.
        """
        reused = self._connection is not None
        try:
            self._run_on_held_connection(action)
        except Exception as error:
            died = isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated
            if not (reused and died):
                raise
            log.debug("the writer's connection went stale (%s); reconnecting", error)
            self._run_on_held_connection(action)

    def _run_on_held_connection(self, action: Callable[[sa.Connection], None]) -> None:
        connection = self._connection
        if connection is None:
            connection = self._connection = writer_connection(self._engine, self._statement_timeout)
        try:
            action(connection)
        except Exception as error:
            # Kept after a refusal: a poisoned batch would otherwise open a connection per
            # attempt at each of its records. Anything else may have left it broken.
            if not is_refusal(error):
                self._close_connection()
            raise

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                if self._discard_connection:
                    connection.invalidate()
                connection.close()
            except Exception as error:  # already broken: closing is best effort
                log.debug("closing the writer's connection: %s", error)

    def _settle(
        self, records: Sequence[EncodedRecord], *, written: int = 0, rejected: int = 0
    ) -> None:
        with self._lock:
            if self._abandoned:
                return
            if records is self._in_flight:  # the whole batch: the usual case
                self._in_flight = []
            else:
                settled = {id(record) for record in records}
                self._in_flight = [r for r in self._in_flight if id(r) not in settled]
            self.written += written
            self._progress.notify_all()
        if written and self._metrics is not None:
            self._metrics.log_written.inc(written)
        if rejected:
            self._count_dropped("rejected", rejected)

    def _drop_everything(self) -> None:
        with self._lock:
            left = len(self._queue) + len(self._in_flight)
            self._queue.clear()
            self._in_flight = []
            self._progress.notify_all()
        if left:
            log.error("shutdown deadline passed: dropping %d prediction records", left)
            self._count_dropped("shutdown", left)

    def _prepare_store(self) -> None:
        self._setup(self._engine)
        self.store_ready = True
        self._store_ok()
        log.info("prediction store ready")

    def _health_check(self) -> None:
        """Between batches: the store answers on the writer's connection (which this keeps
        alive, and replaces when it has died)."""

        def select_one(connection: sa.Connection) -> None:
            with connection.begin():
                connection.execute(sa.text("SELECT 1"))

        def ping() -> None:
            self._on_connection(select_one)
            self._store_ok()

        self._try(ping)

    def _try(self, action: Callable[[], None]) -> bool:
        try:
            action()
        except Exception as error:  # any failure means "store not usable now"
            self._store_failed(error)
            return False
        return True

    def _store_ok(self) -> None:
        if not self.store_up:
            self.store_up = True
            self.last_error = None

    def _store_failed(self, error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        if self.store_up or self.last_error is None:
            log.warning("prediction store unavailable: %s", message)
        self.store_up = False
        self.last_error = message

    def _past_deadline(self) -> bool:
        return self._stopping and time.monotonic() >= self._deadline

    def _count_dropped(self, reason: str, count: int) -> None:
        with self._lock:
            self.dropped[reason] += count
            self._unlogged_drops += count
        if self._metrics is not None:
            self._metrics.log_dropped.labels(reason).inc(count)
        if self._spool is not None:
            self._spool.count_drops(reason, count)  # no I/O: the worker writes the header
        self._flush_drop_log()

    def _flush_drop_log(self, *, force: bool = False) -> None:
        """Report drops at most every DROP_LOG_INTERVAL_SECONDS, so a flood cannot flood logs."""
        with self._lock:
            now = time.monotonic()
            due = force or now - self._last_drop_log >= DROP_LOG_INTERVAL_SECONDS
            if not self._unlogged_drops or not due:
                return
            count, self._unlogged_drops, self._last_drop_log = self._unlogged_drops, 0, now
            totals = dict(self.dropped)
        log.warning(
            "dropped %d prediction records since the last report (totals %s; queue bound %d)",
            count,
            totals,
            self._max_queue,
        )

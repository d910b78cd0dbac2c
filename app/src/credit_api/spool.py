"""The prediction log's spool: batches that wait on local disk while the store is down.

Like Fluent Bit's and Vector's filesystem buffers: each process appends to a file of its own,
one frame per batch, and makes every frame durable (`fdatasync`) before the batch counts as
kept; the frames go to the store oldest first, and a file whose frames are all in the store
is emptied (the process's own) or deleted (another's). A process holds an exclusive `flock` on
its file; a file nobody holds is an orphan of a process that ended (a SIGKILL, an OOM kill, a
shutdown with the store down), and the next process in the directory adopts it and drains it
before its own records. Several processes may share the directory (a shared volume): each
keeps to its own file and adopts only unlocked ones.

A file: a header of two 256-byte slots, then frames.
- The header (JSON with a CRC) says how far the frames are in the store (`drained`, so a
  restart does not replay them all) and how many records this file's line of processes gave
  up on, by reason (`dropped`): the counts outlive the processes that counted them. The two
  slots are written in turn, each with a sequence number, so a write torn by a crash leaves
  the other one whole.
- A frame: magic, record count, payload length, CRC-32, then the records (encoded as the
  queue holds them, one per line). A frame cut short or damaged (a process killed in the
  middle of a write, a damaged disk) ends the file: the frames before it are kept, the
  records it held are counted as dropped (`spool_corrupt`; a fragment too short to say how
  many counts as one, which a frame always holds at least), and the file is cut there.

The size of everything a process holds (its file and those it adopted) is capped: a batch
that would pass the cap, or that the disk refuses, is not kept, and the caller counts it as
dropped (`spool_full`). Replaying a frame is harmless: the store skips request ids it has.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".spool"
SLOT_SIZE = 256
HEADER_SIZE = 2 * SLOT_SIZE
_SLOT_MAGIC = b"CRSPOOL1"
_SLOT_PREFIX = struct.Struct("<8sII")  # magic, length of the JSON, its CRC-32
_FRAME_MAGIC = b"CRF1"
_FRAME_HEADER = struct.Struct("<4sIII")  # magic, records, payload length, CRC-32
# A frame longer than this is damage, not a batch (a batch of 500 records is under 1 MiB).
MAX_FRAME_BYTES = 64 * 1024 * 1024


@dataclass
class Header:
    sequence: int = 0
    drained: int = HEADER_SIZE  # frames before this offset are in the store
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Frame:
    """One batch read back from a spool file."""

    file: SpoolFile
    start: int
    end: int
    records: list[bytes]


def encode_frame(records: Sequence[bytes]) -> bytes:
    payload = b"\n".join(records)  # orjson writes no raw newline: one record per line
    count, length = len(records), len(payload)
    crc = zlib.crc32(payload, zlib.crc32(struct.pack("<II", count, length)))
    return _FRAME_HEADER.pack(_FRAME_MAGIC, count, length, crc) + payload


def encode_slot(header: Header) -> bytes:
    document = json.dumps(
        {"sequence": header.sequence, "drained": header.drained, "dropped": header.dropped},
        separators=(",", ":"),
    ).encode()
    slot = _SLOT_PREFIX.pack(_SLOT_MAGIC, len(document), zlib.crc32(document)) + document
    if len(slot) > SLOT_SIZE:
        raise ValueError("spool header does not fit its slot")
    return slot.ljust(SLOT_SIZE, b"\0")


def decode_slot(slot: bytes) -> Header | None:
    """The header in a slot, or None when the slot is empty or damaged."""
    if len(slot) < _SLOT_PREFIX.size:
        return None
    magic, length, crc = _SLOT_PREFIX.unpack_from(slot)
    document = slot[_SLOT_PREFIX.size : _SLOT_PREFIX.size + length]
    if magic != _SLOT_MAGIC or len(document) != length or zlib.crc32(document) != crc:
        return None
    try:
        fields = json.loads(document)
        return Header(
            sequence=int(fields["sequence"]),
            drained=int(fields["drained"]),
            dropped={str(k): int(v) for k, v in fields["dropped"].items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class SpoolFile:
    """One spool file, open and locked by this process."""

    def __init__(self, path: Path, fd: int, header: Header, *, own: bool) -> None:
        self.path = path
        self.fd = fd
        self.header = header
        self.own = own
        self.end = os.fstat(fd).st_size  # where the readable frames end
        self.pending = 0  # records in frames after header.drained

    @classmethod
    def create(cls, directory: Path) -> SpoolFile:
        """A new file, locked before it gets the name other processes look for."""
        name = f"{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        partial = directory / f".{name}.new"
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        spool = cls(partial, fd, Header(), own=True)
        spool.write_header()
        spool.end = HEADER_SIZE
        path = directory / f"{name}{SUFFIX}"
        partial.rename(path)
        spool.path = path
        _sync_directory(directory)
        return spool

    @classmethod
    def adopt(cls, path: Path) -> SpoolFile | None:
        """The orphan at `path`, locked; None when a live process holds it or it is gone."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)  # deleted or replaced since we opened it
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        slots = [decode_slot(os.pread(fd, SLOT_SIZE, offset)) for offset in (0, SLOT_SIZE)]
        found = [slot for slot in slots if slot is not None]
        if found:
            header = max(found, key=lambda slot: slot.sequence)
        else:
            # Both slots damaged: every frame is replayed (the store skips what it has); the
            # drop counts are lost, which the log says.
            log.error("spool %s: header unreadable, replaying every frame", path.name)
            header = Header()
        header.drained = max(HEADER_SIZE, header.drained)
        return cls(path, fd, header, own=False)

    @property
    def host(self) -> str:
        """The host name of the process that created the file (a pod's name)."""
        parts = self.path.name.removesuffix(SUFFIX).split("-")
        return "-".join(parts[1:-2])

    @property
    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def write_header(self) -> None:
        """Write the header into the older slot (a torn write leaves the newer whole)."""
        self.header.sequence += 1
        offset = SLOT_SIZE * (self.header.sequence % 2)
        _write_all(self.fd, encode_slot(self.header), offset)
        os.fdatasync(self.fd)

    def append(self, frame: bytes) -> None:
        """Write a frame at the end and make it durable; on failure the file is as before."""
        end = self.end
        try:
            _write_all(self.fd, frame, end)
            os.fdatasync(self.fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, end)
            raise
        self.end = end + len(frame)

    def frames(self, start: int) -> Iterator[Frame | int]:
        """The frames from `start` on; a damaged or cut frame ends them, yielding the number
        of records it held (at least 1) after cutting the file there."""
        offset = start
        while offset < self.end:
            head = os.pread(self.fd, _FRAME_HEADER.size, offset)
            records = self._frame_at(offset, head)
            if records is None:
                yield self._cut(offset, head)
                return
            end = offset + _FRAME_HEADER.size + _FRAME_HEADER.unpack(head)[2]
            yield Frame(self, offset, end, records)
            offset = end

    def _frame_at(self, offset: int, head: bytes) -> list[bytes] | None:
        if len(head) < _FRAME_HEADER.size:
            return None
        magic, count, length, crc = _FRAME_HEADER.unpack(head)
        body_end = offset + _FRAME_HEADER.size + length
        if magic != _FRAME_MAGIC or count == 0 or length > MAX_FRAME_BYTES or body_end > self.end:
            return None
        payload = os.pread(self.fd, length, offset + _FRAME_HEADER.size)
        if zlib.crc32(payload, zlib.crc32(struct.pack("<II", count, length))) != crc:
            return None
        records = payload.split(b"\n")
        return records if len(records) == count else None

    def _cut(self, offset: int, head: bytes) -> int:
        """Cut the file at a damaged frame; the number of records lost (at least 1)."""
        lost = 1
        if len(head) == _FRAME_HEADER.size:
            magic, count, _length, _crc = _FRAME_HEADER.unpack(head)
            if magic == _FRAME_MAGIC and count > 0:
                lost = count
        log.error(
            "spool %s: the frame at byte %d is cut short or damaged (%d bytes);"
            " %d record(s) lost, the frames before it are kept",
            self.path.name,
            offset,
            self.end - offset,
            lost,
        )
        os.ftruncate(self.fd, offset)
        os.fdatasync(self.fd)
        self.end = offset
        return lost

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)  # releases the lock


class Spool:
    """The spool of one process: its own file, and the orphans it adopted, oldest first.

    Thread-safe: the prediction log's writer thread uses it, and `stop()` may too when that
    thread is stuck in a database call.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.RLock()  # the files; held across their I/O
        self._counts_lock = threading.Lock()  # drops not yet written; never held across I/O
        self._unwritten_drops: dict[str, int] = {}
        self._refusing = False
        directory.mkdir(parents=True, exist_ok=True)
        self._own = SpoolFile.create(directory)
        self._adopted: list[SpoolFile] = []

    # -- adoption ------------------------------------------------------------------------------

    def adopt_orphans(self) -> dict[str, int]:
        """Adopt the files no live process holds; returns the drops they add to this spool's
        counts (for the metrics): their own counts when they come from this host (an earlier
        container of this pod, whose counter series this process continues), and the records
        found damaged in them."""
        added: dict[str, int] = {}
        with self._lock:
            held = {self._own.path, *(f.path for f in self._adopted)}
            for path in sorted(self.directory.glob(f"*{SUFFIX}")):
                if path in held:
                    continue
                orphan = SpoolFile.adopt(path)
                if orphan is None:
                    continue
                self._take_over(orphan, added)
            self._remove_unnamed_files()
        return added

    def _take_over(self, orphan: SpoolFile, added: dict[str, int]) -> None:
        inherited = dict(orphan.header.dropped)
        if orphan.host != socket.gethostname():
            if any(inherited.values()):
                log.warning(
                    "spool %s of %s counted drops %s; that host's own series showed them",
                    orphan.path.name,
                    orphan.host,
                    inherited,
                )
            inherited = {}
        for item in orphan.frames(orphan.header.drained):
            if isinstance(item, int):
                inherited["spool_corrupt"] = inherited.get("spool_corrupt", 0) + item
            else:
                orphan.pending += len(item.records)
        self._add_drops(inherited)
        for reason, count in inherited.items():
            if count:
                added[reason] = added.get(reason, 0) + count
        # The counts move to this process's file, then leave the orphan's: a crash between the
        # two writes counts them twice, never zero times.
        self._own.write_header()
        if orphan.header.dropped:
            orphan.header.dropped = {}
            orphan.write_header()
        log.info("adopted spool %s: %d record(s) to replay", orphan.path.name, orphan.pending)
        self._adopted.append(orphan)
        self._adopted.sort(key=lambda f: f.path.name)
        if orphan.pending == 0:
            self._finish(orphan)  # kept only for its counts, which are ours now

    def _remove_unnamed_files(self) -> None:
        """Files a process was creating when it died: they hold no record yet."""
        for partial in self.directory.glob(".*.new"):
            if partial == self._own.path:
                continue
            orphan = SpoolFile.adopt(partial)
            if orphan is not None:
                partial.unlink(missing_ok=True)
                orphan.close()

    # -- writing -------------------------------------------------------------------------------

    def append(self, records: Sequence[bytes]) -> bool:
        """Keep a batch; False when it would pass the cap or the disk refuses it."""
        frame = encode_frame(records)
        with self._lock:
            if self.size_bytes + len(frame) > self.max_bytes:
                self._refused(f"full ({self.size_bytes} of {self.max_bytes} bytes)")
                return False
            try:
                self._own.append(frame)
            except OSError as error:
                self._refused(f"refused by the disk ({error})")
                return False
            self._own.pending += len(records)
            if self._refusing:
                self._refusing = False
                log.warning("the spool takes batches again")
            return True

    def _refused(self, why: str) -> None:
        if not self._refusing:  # once per episode: a full spool must not flood the log
            self._refusing = True
            log.error("spool %s %s: batches are dropped", self._own.path, why)

    def count_drops(self, reason: str, count: int) -> None:
        """Add to the drop counts the header keeps; `persist_drops` writes them. No I/O, no
        wait on it: the request path calls this."""
        with self._counts_lock:
            self._unwritten_drops[reason] = self._unwritten_drops.get(reason, 0) + count

    def persist_drops(self) -> None:
        with self._counts_lock:
            if not self._unwritten_drops:
                return
            unwritten, self._unwritten_drops = self._unwritten_drops, {}
        with self._lock:
            self._add_drops(unwritten)
            self._own.write_header()

    def _add_drops(self, counts: dict[str, int]) -> None:
        dropped = self._own.header.dropped
        for reason, count in counts.items():
            if count:
                dropped[reason] = dropped.get(reason, 0) + count

    @property
    def dropped(self) -> dict[str, int]:
        """The drop counts of this spool's line of processes, this one's included."""
        with self._lock, self._counts_lock:
            totals = dict(self._own.header.dropped)
            for reason, count in self._unwritten_drops.items():
                totals[reason] = totals.get(reason, 0) + count
            return totals

    # -- draining ------------------------------------------------------------------------------

    @property
    def backlog(self) -> bool:
        return self.pending_records > 0

    @property
    def pending_records(self) -> int:
        return self._own.pending + sum(f.pending for f in self._adopted)

    @property
    def size_bytes(self) -> int:
        return self._own.end + sum(f.end for f in self._adopted)

    def oldest(self) -> tuple[Frame | None, int]:
        """The oldest frame not yet in the store, and the records found damaged on the way
        (counted in the header, cut from their file)."""
        damaged = 0
        found: Frame | None = None
        with self._lock:
            for spool in [*self._adopted, self._own]:
                if spool.pending == 0:
                    continue
                for item in spool.frames(spool.header.drained):
                    if isinstance(item, Frame):
                        found = item
                        break
                    damaged += item
                if found is not None:
                    break
                spool.pending = 0  # its frames ended (or were cut) before its count
                self._finish(spool)
            if damaged:
                self._add_drops({"spool_corrupt": damaged})
                self._own.write_header()
        return found, damaged

    def drained(self, frame: Frame) -> None:
        """`frame` is in the store: move the file's mark past it, and finish a file so drained."""
        with self._lock:
            spool = frame.file
            spool.header.drained = frame.end
            spool.pending = max(0, spool.pending - len(frame.records))
            if spool.pending == 0:
                self._finish(spool)
            else:
                spool.write_header()

    def _finish(self, spool: SpoolFile) -> None:
        """Every frame of `spool` is in the store: delete an adopted file, empty our own.

        The mark is written before the frames go, so a crash in between replays them, and
        the store skips them."""
        if spool.own:
            spool.header.drained = HEADER_SIZE
            spool.write_header()
            os.ftruncate(spool.fd, HEADER_SIZE)
            spool.end = HEADER_SIZE
            return
        spool.path.unlink(missing_ok=True)
        spool.close()
        self._adopted.remove(spool)
        log.info("spool %s replayed and deleted", spool.path.name)

    def close(self) -> None:
        """Release every file; our own is deleted when it holds nothing worth keeping."""
        with self._lock:
            for spool in self._adopted:
                spool.close()
            self._adopted = []
            self.persist_drops()
            if self._own.pending == 0 and not any(self._own.header.dropped.values()):
                self._own.path.unlink(missing_ok=True)
            self._own.close()


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _sync_directory(directory: Path) -> None:
    """Make a file's name durable (its creation or its rename) in the directory."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_header(path: Path) -> Header | None:
    """The header of a spool file as it is on disk (for tools and tests); None if unreadable."""
    with path.open("rb") as file:
        slots = [decode_slot(file.read(SLOT_SIZE)), decode_slot(file.read(SLOT_SIZE))]
    found = [slot for slot in slots if slot is not None]
    return max(found, key=lambda slot: slot.sequence) if found else None


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))

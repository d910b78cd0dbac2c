"""The spool on a real filesystem: frames, headers, caps, adoption, and damaged files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from credit_api.spool import (
    HEADER_SIZE,
    SLOT_SIZE,
    Frame,
    Spool,
    encode_frame,
    read_header,
    spool_files,
)


def records(start: int, count: int) -> list[bytes]:
    return [json.dumps([f"id-{n}", n]).encode() for n in range(start, start + count)]


def drain(spool: Spool) -> list[bytes]:
    """Everything the spool holds, oldest first, marked drained as a writer would."""
    out: list[bytes] = []
    while spool.backlog:
        frame, _damaged = spool.oldest()
        if frame is None:
            break
        out += frame.records
        spool.drained(frame)
    return out


def only_file(directory: Path) -> Path:
    [path] = spool_files(directory)
    return path


def test_batches_come_back_oldest_first_and_drained_files_empty(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.append(records(0, 3))
    assert spool.append(records(3, 2))
    assert spool.pending_records == 5
    assert drain(spool) == records(0, 5)
    assert not spool.backlog
    # Our own file is emptied (down to its header), not deleted, while the process runs.
    assert only_file(tmp_path).stat().st_size == HEADER_SIZE
    spool.close()
    assert spool_files(tmp_path) == []  # nothing pending, no drops: nothing to hand on


def test_a_batch_over_the_cap_is_refused(tmp_path: Path) -> None:
    two_frames = len(encode_frame(records(0, 10))) + len(encode_frame(records(10, 10)))
    spool = Spool(tmp_path, max_bytes=HEADER_SIZE + two_frames)
    assert spool.append(records(0, 10))
    assert spool.append(records(10, 10))
    assert not spool.append(records(20, 10))
    assert spool.size_bytes == HEADER_SIZE + two_frames
    assert drain(spool) == records(0, 20)
    assert spool.append(records(20, 10))  # drained: room again


def test_an_orphan_is_adopted_drained_first_and_deleted(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1 << 20)
    first.append(records(0, 4))
    first.count_drops("spool_full", 7)
    # A live process's file is locked: another process leaves it alone.
    second = Spool(tmp_path, max_bytes=1 << 20)
    assert second.adopt_orphans() == {}
    assert not second.backlog
    first.close()  # as at exit (or a kill): the lock goes with the process
    assert second.adopt_orphans() == {"spool_full": 7}
    assert second.dropped == {"spool_full": 7}
    second.append(records(4, 2))  # the new process's own records queue behind
    assert drain(second) == records(0, 6)
    assert len(spool_files(tmp_path)) == 1  # the orphan is gone, our own file stays
    second.close()
    # The drop counts go on in the file that is left, for the next process.
    [left] = spool_files(tmp_path)
    header = read_header(left)
    assert header is not None
    assert header.dropped == {"spool_full": 7}


def test_restarts_hand_the_counts_on_without_piling_up_files(tmp_path: Path) -> None:
    for restart in range(1, 5):
        spool = Spool(tmp_path, max_bytes=1 << 20)
        assert spool.adopt_orphans() == ({"queue_full": restart - 1} if restart > 1 else {})
        spool.count_drops("queue_full", 1)
        spool.close()
        [left] = spool_files(tmp_path)  # the last process's file, holding the counts
        header = read_header(left)
        assert header is not None
        assert header.dropped == {"queue_full": restart}


def test_drop_counts_reach_the_header_when_persisted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.count_drops("queue_full", 3)
    header = read_header(only_file(tmp_path))
    assert header is not None
    assert header.dropped == {}  # counting does no I/O (the request path calls it)
    spool.persist_drops()
    header = read_header(only_file(tmp_path))
    assert header is not None
    assert header.dropped == {"queue_full": 3}


def test_a_half_drained_orphan_resumes_where_it_stopped(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1 << 20)
    for n in range(4):
        first.append(records(10 * n, 10))
    frame, _ = first.oldest()
    assert frame is not None
    first.drained(frame)
    first.close()
    second = Spool(tmp_path, max_bytes=1 << 20)
    second.adopt_orphans()
    assert second.pending_records == 30
    assert drain(second) == records(10, 30)


def test_drops_of_another_hosts_spool_stay_with_that_host(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1 << 20)
    first.append(records(0, 2))
    first.count_drops("queue_full", 5)
    first.close()
    path = only_file(tmp_path)
    other_host = path.name.replace(f"-{socket.gethostname()}-", "-another-pod-")
    path.rename(tmp_path / other_host)
    second = Spool(tmp_path, max_bytes=1 << 20)
    # Its records are replayed; its counts were that pod's series, not this one's.
    assert second.adopt_orphans() == {}
    assert drain(second) == records(0, 2)


def spool_with_frames(directory: Path, batches: int) -> tuple[Path, list[int]]:
    """A closed spool file of `batches` frames of 5 records; the frames' end offsets."""
    spool = Spool(directory, max_bytes=1 << 20)
    ends = []
    for n in range(batches):
        spool.append(records(5 * n, 5))
        ends.append(spool.size_bytes)
    spool.close()
    return only_file(directory), ends


@pytest.mark.parametrize("cut_into_last_frame", [1, 8, 15, 16, 17, 40, -1])
def test_a_cut_tail_keeps_the_frames_before_it_and_counts_the_rest(
    tmp_path: Path, cut_into_last_frame: int
) -> None:
    """A process killed while writing a frame leaves part of it: the offsets cut inside the
    frame's 16-byte header and inside its records."""
    path, ends = spool_with_frames(tmp_path, 3)
    start_of_last = ends[1]
    cut = ends[2] - 1 if cut_into_last_frame < 0 else start_of_last + cut_into_last_frame
    os.truncate(path, cut)
    spool = Spool(tmp_path, max_bytes=1 << 20)
    added = spool.adopt_orphans()
    # A fragment shorter than a frame header cannot say how many records it held: one.
    whole_frame_header = cut_into_last_frame < 0 or cut_into_last_frame >= 16
    assert added == {"spool_corrupt": 5 if whole_frame_header else 1}
    assert drain(spool) == records(0, 10)
    assert spool.dropped == added


def test_damaged_bytes_inside_a_frame_end_the_file_there(tmp_path: Path) -> None:
    path, ends = spool_with_frames(tmp_path, 3)
    with path.open("r+b") as file:
        file.seek(ends[0] + 20)
        file.write(b"\xff")
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.adopt_orphans() == {"spool_corrupt": 5}
    # The damaged frame and everything after it are cut: frames cannot be found past it.
    assert drain(spool) == records(0, 5)


def test_garbage_after_the_last_frame_counts_as_one_lost_record(tmp_path: Path) -> None:
    path, _ends = spool_with_frames(tmp_path, 2)
    with path.open("ab") as file:
        file.write(b"\0" * 4096)  # what a filesystem may show of a write that never landed
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.adopt_orphans() == {"spool_corrupt": 1}
    assert drain(spool) == records(0, 10)


def test_a_torn_header_slot_leaves_the_other_one(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1 << 20)
    first.append(records(0, 5))
    first.count_drops("queue_full", 2)
    first.persist_drops()
    first.close()
    path = only_file(tmp_path)
    header = read_header(path)
    assert header is not None
    newest = SLOT_SIZE * (header.sequence % 2)
    with path.open("r+b") as file:
        file.seek(newest + 10)
        file.write(b"torn")
    older = read_header(path)
    assert older is not None
    assert older.sequence == header.sequence - 1
    second = Spool(tmp_path, max_bytes=1 << 20)
    second.adopt_orphans()
    assert drain(second) == records(0, 5)


def test_an_unreadable_header_replays_every_frame(tmp_path: Path) -> None:
    path, _ends = spool_with_frames(tmp_path, 2)
    with path.open("r+b") as file:
        file.write(b"\xff" * HEADER_SIZE)
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.adopt_orphans() == {}  # the counts it held are lost (and logged)
    assert drain(spool) == records(0, 10)


def test_a_file_being_created_when_its_process_died_is_removed(tmp_path: Path) -> None:
    (tmp_path / ".00000000000000000001-host-1-abcd.new").write_bytes(b"")
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.adopt_orphans()
    assert sorted(p.name for p in tmp_path.iterdir()) == [only_file(tmp_path).name]


WRITE_UNTIL_REFUSED = """
import json, resource, signal, sys
from pathlib import Path
from credit_api.spool import Spool
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
spool = Spool(Path(sys.argv[1]), max_bytes=1 << 30)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
kept = 0
while spool.append([json.dumps(["id-%d" % (kept * 7 + n), n]).encode() for n in range(7)]):
    kept += 1
print(json.dumps({"kept": kept, "size": spool.size_bytes}))
"""


def test_a_batch_the_disk_refuses_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """The disk fills up in the middle of a frame: the part written is taken back."""
    result = subprocess.run(
        [sys.executable, "-c", WRITE_UNTIL_REFUSED, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout)
    path = only_file(tmp_path)
    assert path.stat().st_size == figures["size"] <= 20_000
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.adopt_orphans() == {}  # no damaged frame: nothing is counted as lost
    frames = drain(spool)
    assert len(frames) == 7 * figures["kept"]


def test_frame_records_survive_any_bytes_but_newlines() -> None:
    # Records are encoded JSON: orjson never writes a raw newline, so lines separate them.
    assert isinstance(Frame, type)
    batch = [b'["a\\nb", 1]', b'["\\u2028", 2]']
    assert encode_frame(batch).count(b"\n") == 1

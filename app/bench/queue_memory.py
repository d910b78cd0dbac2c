"""Memory a full prediction-log queue keeps resident, per record, against the record's size.

`bench_api.py` runs it in a fresh interpreter, so no memory freed earlier (training, other
runs) is reused and the growth is what the queue itself takes. The writer is never started:
every record submitted stays queued, as while the store is down.

    python queue_memory.py RECORDS    # prints {"resident_per_record": ..., "encoded_size": ...}
"""

from __future__ import annotations

import json
import sys
import time

import psutil
import sqlalchemy as sa

from credit_api.batch_insert import encode_record
from credit_api.prediction_log import PredictionLogWriter
from credit_api.schemas import EXAMPLE_APPLICATION, CreditApplication


def measure(records: int) -> dict[str, float]:
    features = CreditApplication.model_validate(EXAMPLE_APPLICATION).model_dump()
    writer = PredictionLogWriter(sa.create_engine("sqlite://"), max_queue=records)
    process = psutil.Process()
    before = process.memory_info().rss
    for n in range(records):
        record = (f"{n:032x}", time.time(), "german-credit", "1.0.0", features, 0.25, "good")
        writer.submit([record])
    grown = process.memory_info().rss - before
    assert writer.depth == records, "the queue dropped records"
    return {
        "resident_per_record": grown / records,
        "encoded_size": len(encode_record(record)),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))

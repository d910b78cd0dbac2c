"""Bodies an attacker (or a broken client) can send, each filled up to the body size limit.

Each names the route it targets, the content type, the status the API must answer and, for
a 422, the location of the first error it must name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from credit_api.schemas import EXAMPLE_APPLICATION

PREDICT = "/api/v1/predict"
BATCH = "/api/v1/predict/batch"
FEEDBACK = "/api/v1/feedback"
JSON = "application/json"
# A JSON media type that FastAPI parses but the fast path leaves to FastAPI's own handler.
VENDOR_JSON = "application/vnd.credit+json"

ROW = json.dumps(EXAMPLE_APPLICATION, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Hostile:
    name: str
    route: str
    build: Callable[[int], bytes]  # the body, given the size limit
    status: int = 422
    first_loc: tuple[str | int, ...] | None = None  # where the first error points
    content_type: str = JSON


def repeated(prefix: bytes, unit: bytes, suffix: bytes, limit: int, sep: bytes = b",") -> bytes:
    """prefix unit,unit,...,unit suffix: as many units as fit in `limit` bytes."""
    count = max(1, (limit - len(prefix) - len(suffix) + len(sep)) // (len(unit) + len(sep)))
    return prefix + sep.join([unit] * count) + suffix


def unknown_keys(limit: int) -> bytes:
    """One object of as many short unknown keys as fit: {"0":0,"1":0,...}."""
    members: list[bytes] = []
    size, index = 2, 0
    while True:
        member = b'"%x":0' % index
        if size + len(member) + 1 > limit:
            return b"{" + b",".join(members) + b"}"
        members.append(member)
        size += len(member) + 1
        index += 1


def row_with_unknown_keys(count: int) -> bytes:
    extra = {f"unknown_{i}": 1 for i in range(count)}
    return json.dumps({**EXAMPLE_APPLICATION, **extra}, separators=(",", ":")).encode()


def batch_of(rows: list[bytes]) -> bytes:
    return b'{"applications":[' + b",".join(rows) + b"]}"


def rows_within(row: bytes, limit: int, at_most: int) -> bytes:
    count = min(at_most, (limit - 20) // (len(row) + 1))
    return batch_of([row] * count)


def wrong_everywhere() -> bytes:
    """A row with every field present and every value wrong: the most errors a row can give."""
    values = {k: ("x" if isinstance(v, str) else -5) for k, v in EXAMPLE_APPLICATION.items()}
    return json.dumps(values, separators=(",", ":")).encode()


def hostile_bodies(max_batch: int) -> list[Hostile]:
    first_field = next(iter(EXAMPLE_APPLICATION))
    return [
        # The two bodies of the report: 150k unknown keys in one object, 150 in each of 1000 rows.
        Hostile("object_of_unknown_keys", PREDICT, unknown_keys, first_loc=("body", "0")),
        Hostile(
            "batch_rows_with_150_unknown_keys",
            BATCH,
            lambda limit: rows_within(row_with_unknown_keys(150), limit, max_batch),
            first_loc=("body", "applications", 0, "unknown_0"),
        ),
        Hostile(
            "object_of_unknown_keys_under_the_direct_threshold",
            PREDICT,
            lambda _limit: unknown_keys(16 * 1024),
            first_loc=("body", first_field),  # FastAPI's own answer: the missing fields first
        ),
        Hostile(
            "object_of_unknown_keys_as_vendor_json",
            PREDICT,
            unknown_keys,
            first_loc=("body", "0"),
            content_type=VENDOR_JSON,
        ),
        Hostile(
            "long_string",
            PREDICT,
            lambda limit: b'{"purpose":"' + b"a" * (limit - 16) + b'"}',
            first_loc=("body", "purpose"),
        ),
        Hostile(
            "long_number",
            PREDICT,
            lambda limit: b'{"credit_amount":1' + b"0" * (limit - 20) + b"}",
            first_loc=("body", "credit_amount"),
        ),
        Hostile(
            "deep_arrays",
            PREDICT,
            lambda limit: b"[" * (limit // 2) + b"]" * (limit // 2),
            first_loc=("body",),
        ),
        Hostile(
            "deep_objects",
            PREDICT,
            lambda limit: b'{"purpose":' * (limit // 12) + b"1" + b"}" * (limit // 12),
            first_loc=("body", "purpose"),
        ),
        Hostile(
            "array_of_strings_in_a_field",
            PREDICT,
            lambda limit: repeated(b'{"purpose":[', b'"a"', b"]}", limit),
            first_loc=("body", "purpose"),
        ),
        Hostile(
            "batch_of_empty_objects",
            BATCH,
            lambda limit: repeated(b'{"applications":[', b"{}", b"]}", limit),
            first_loc=("body", "applications", 0, first_field),
        ),
        Hostile(
            "batch_of_empty_arrays",
            BATCH,
            lambda limit: repeated(b'{"applications":[', b"[]", b"]}", limit),
            first_loc=("body", "applications", 0),
        ),
        Hostile(
            "batch_of_one_unknown_key_rows",
            BATCH,
            lambda limit: repeated(b'{"applications":[', b'{"a":1}', b"]}", limit),
            first_loc=("body", "applications", 0, "a"),
        ),
        Hostile(
            "batch_of_too_many_valid_rows",
            BATCH,
            lambda limit: rows_within(ROW, limit, 10 * max_batch),
            first_loc=("body", "applications"),
        ),
        Hostile(
            "batch_of_rows_wrong_everywhere",
            BATCH,
            lambda limit: rows_within(wrong_everywhere(), limit, max_batch),
            first_loc=("body", "applications", 0, first_field),
        ),
        Hostile(
            "batch_of_rows_wrong_everywhere_as_vendor_json",
            BATCH,
            lambda limit: rows_within(wrong_everywhere(), limit, max_batch),
            first_loc=("body", "applications", 0, first_field),
            content_type=VENDOR_JSON,
        ),
        Hostile("feedback_of_unknown_keys", FEEDBACK, unknown_keys, first_loc=("body", "0")),
        # Valid bodies count too.
        Hostile(
            "batch_of_valid_rows",
            BATCH,
            lambda limit: rows_within(ROW, limit, max_batch),
            status=200,
        ),
        Hostile(
            "application_padded_with_whitespace",
            PREDICT,
            lambda limit: ROW[:-1] + b" " * (limit - len(ROW)) + b"}",
            status=200,
        ),
    ]

"""Durations (`30s`, `5m`, `1h`, `30d`), as the spec and Prometheus use them."""

from __future__ import annotations

import re

# The same grammar as the CRD's `pattern`: one integer and one unit.
DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h|d|w)$"
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(DURATION_PATTERN)


def parse_duration(text: str) -> int:
    """Seconds in a duration such as `90s` or `1h`; ValueError when it is not one."""
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h or 30d")
    return int(text[:-1]) * _UNIT_SECONDS[text[-1]]


def format_duration(seconds: int) -> str:
    """The shortest Prometheus duration for whole seconds: 3600 -> `1h`, 90 -> `90s`."""
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every integer divides by 1")

"""Durations (`30s`, `5m`, `1h`, `30d`) and cron schedules, as the spec and Prometheus use them."""

from __future__ import annotations

import itertools
import re

# The same grammar as the CRD's `pattern`: one integer and one unit.
DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h|d|w)$"
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(DURATION_PATTERN)

# Five cron fields, each `*`, `*/n`, or a comma list of numbers and ranges (with optional /n).
_CRON_ITEM = r"(\*|[0-9]+(-[0-9]+)?)(/[1-9][0-9]*)?"
_CRON_FIELD = rf"{_CRON_ITEM}(,{_CRON_ITEM})*"
CRON_PATTERN = rf"^{_CRON_FIELD}( {_CRON_FIELD}){{4}}$"
_CRON = re.compile(CRON_PATTERN)
_FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_DAY = 86_400


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


def _expand_field(field: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start_text, end_text = base.split("-")
            start, end = int(start_text), int(end_text)
        else:
            start = int(base)
            end = high if step_text else start
        if start < low or end > high or start > end:
            raise ValueError(f"{item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def validate_cron(schedule: str) -> None:
    """ValueError when the schedule is not a five-field cron expression with values in range."""
    if not _CRON.match(schedule):
        raise ValueError(f"{schedule!r} is not a five-field cron expression like '*/15 * * * *'")
    for field, (low, high) in zip(schedule.split(" "), _FIELD_RANGES, strict=True):
        _expand_field(field, low, high)


def cron_interval_seconds(schedule: str) -> int:
    """The longest gap between two runs of a cron schedule.

    Exact when the day fields are `*` (the schedule repeats daily); otherwise the schedule runs
    at most weekly or monthly, and a week (day of week set) or 31 days is the safe upper bound.
    """
    validate_cron(schedule)
    minute, hour, day_of_month, month, day_of_week = schedule.split(" ")
    if day_of_month != "*" or month != "*":
        return 31 * _DAY
    if day_of_week != "*":
        return 7 * _DAY
    minutes = sorted(_expand_field(minute, 0, 59))
    hours = sorted(_expand_field(hour, 0, 23))
    runs = [h * 3600 + m * 60 for h in hours for m in minutes]
    gaps = [later - earlier for earlier, later in itertools.pairwise(runs)]
    gaps.append(runs[0] + _DAY - runs[-1])
    return max(gaps)

"""Durations (`30s`, `5m`, `1h`, `30d`), as the spec and Prometheus use them."""

from __future__ import annotations

import re

# The same grammar as the CRD's `pattern`: one integer and one unit.
DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h|d|w)$"
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(DURATION_PATTERN)
# Prometheus' own grammar (prometheus/common's model.ParseDuration): units in this order, each
# at most once, e.g. `1h30m`, `500ms`; `0` alone is zero.
_PROMETHEUS_DURATION = re.compile(
    r"^(?:(?P<y>[0-9]+)y)?(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?"
    r"(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?$"
)
_PROMETHEUS_UNIT_SECONDS = {
    "y": 365 * 86_400, "w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1, "ms": 0.001,
}  # fmt: skip


def parse_duration(text: str) -> int:
    """Seconds in a duration such as `90s` or `1h`; ValueError when it is not one."""
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h or 30d")
    return int(text[:-1]) * _UNIT_SECONDS[text[-1]]


def parse_prometheus_duration(text: str) -> float:
    """Seconds in any duration Prometheus and prometheus-operator accept (`1h30m`, `500ms`)."""
    found = _PROMETHEUS_DURATION.match(text)
    if text == "0":
        return 0.0
    if not text or found is None:
        raise ValueError(f"{text!r} is not a Prometheus duration like 30s, 1m30s or 500ms")
    return sum(
        int(value) * _PROMETHEUS_UNIT_SECONDS[unit]
        for unit, value in found.groupdict().items()
        if value is not None
    )


def format_duration(seconds: int) -> str:
    """The shortest Prometheus duration for whole seconds: 3600 -> `1h`, 90 -> `90s`."""
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every integer divides by 1")

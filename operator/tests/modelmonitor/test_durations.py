"""Durations as the spec writes them and as Prometheus reads them."""

from __future__ import annotations

import pytest

from modelmonitor.durations import format_duration, parse_duration, parse_prometheus_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("500ms", 0.5), ("5s", 5), ("1m30s", 90), ("90s", 90), ("1h", 3600),
     ("1d2h", 93_600), ("2w", 1_209_600), ("1y", 31_536_000)],
)  # fmt: skip
def test_prometheus_durations_in_its_own_units(text: str, seconds: float) -> None:
    assert parse_prometheus_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1.5s", "30s1m", "5 s", "-5s", "1mo", "ms"])
def test_what_prometheus_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="Prometheus duration"):
        parse_prometheus_duration(text)


def test_spec_durations_round_trip_through_the_shortest_form() -> None:
    for text in ("30s", "5m", "1h", "30d"):
        assert format_duration(parse_duration(text)) == text
    assert format_duration(90) == "90s"

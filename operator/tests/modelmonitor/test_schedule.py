"""Drift schedules: the CronJob grammar Kubernetes accepts, and the gaps between runs."""

from __future__ import annotations

from typing import Any

import pytest

from modelmonitor.schedule import longest_interval_seconds, parse_schedule
from modelmonitor.spec import InvalidSpecError, parse_monitor

from .support import EXAMPLE, SCHEDULES, load_manifest


@pytest.mark.parametrize("case", SCHEDULES["accepted"], ids=lambda case: repr(case["schedule"]))
def test_accepted_schedules_and_their_longest_interval(case: dict[str, Any]) -> None:
    parse_schedule(case["schedule"])
    assert longest_interval_seconds(case["schedule"]) == case["interval"]


@pytest.mark.parametrize("case", SCHEDULES["refused"], ids=lambda case: repr(case["schedule"]))
def test_refused_schedules_say_why_on_the_field(case: dict[str, Any]) -> None:
    manifest = load_manifest(EXAMPLE)
    manifest["spec"]["drift"]["schedule"] = case["schedule"]
    with pytest.raises(InvalidSpecError) as raised:
        parse_monitor(manifest)
    assert raised.value.field == "spec.drift.schedule"
    assert case["refused"] in raised.value.message
    # A sentence, not the grammar as a regular expression.
    assert "^" not in raised.value.message


def test_the_interval_of_a_weekday_schedule_spans_the_weekend() -> None:
    """The case the old bound got wrong in the other direction: a yearly schedule was taken
    to run at least monthly, so its result was called stale after 62 days."""
    assert longest_interval_seconds("0 6 1 1 *") == 366 * 86_400
    assert longest_interval_seconds("0 9 * * 1-5") == 3 * 86_400

"""Cron schedules exactly as a Kubernetes CronJob takes them, and how far apart their runs are.

Kubernetes validates `CronJob.spec.schedule` with robfig/cron v3's standard parser and refuses
any schedule that contains `TZ` (`validateScheduleFormat`, pkg/apis/batch/validation, v1.36).
That grammar is: five fields separated by white space (minute 0-59, hour 0-23, day of month
1-31, month 1-12 or JAN-DEC, day of week 0-6 or SUN-SAT, names in any case), each a comma list
of `*`, `?`, `N` or `N-M`, optionally followed by `/step` (`N/step` runs from N to the field's
maximum); or one of the descriptors `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
`@midnight`, `@hourly`, `@every <Go duration>`. When neither day field is a plain `*` or `?`, a
day matches if either matches (as in Vixie cron); otherwise both must.

The cron libraries on PyPI each read another dialect: croniter and cronsim take `L`, `W`, `#`
and day of week 7, which Kubernetes refuses, and neither knows `@every`; croniter also takes six
and seven fields. So the grammar is followed here rule by rule, and the tests check a table and
generated schedules against the API server's own CronJob validation (a dry-run create).

The operator is stricter in one way on purpose: a schedule that can never run (February 30th,
or an empty list such as `,`) is refused. Kubernetes accepts it and its job never starts.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from dataclasses import dataclass

# Go's strings.Fields splits on unicode.IsSpace: these characters.
_WHITE_SPACE = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
# strconv.Atoi: an optional sign and ASCII digits.
_GO_INT = re.compile(r"^[+-]?[0-9]+$")
# time.ParseDuration: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or a bare 0.
_GO_DURATION_PART = re.compile(r"([0-9]*)(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h)")
_NANOSECONDS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9}
_NANOSECONDS |= {"m": 60 * 10**9, "h": 3600 * 10**9}
_MAX_GO_DURATION = 2**63 - 1

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

DAY_SECONDS = 86_400
# Day-of-week and leap-year patterns repeat every 28 years between 1901 and 2099: one cycle
# holds every gap between the days a schedule runs on.
_CYCLE_START = dt.date(2001, 1, 1)
_CYCLE_DAYS = (dt.date(2029, 1, 1) - _CYCLE_START).days


@dataclass(frozen=True)
class _Bounds:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    first_named: int = 0

    def value(self, text: str, item: str) -> int:
        """A number or (month, day of week) a name, as robfig's parseIntOrName reads it."""
        if text.lower() in self.names:
            return self.names.index(text.lower()) + self.first_named
        return _go_int(text, item, self.name)


_FIELDS = (
    _Bounds("minute", 0, 59),
    _Bounds("hour", 0, 23),
    _Bounds("day of month", 1, 31),
    _Bounds("month", 1, 12, _MONTHS, first_named=1),
    _Bounds("day of week", 0, 6, _DAYS),
)

# The descriptors, as the five fields they stand for.
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_EVERY = "@every "


@dataclass(frozen=True)
class FieldSchedule:
    """Runs at these minutes and hours on the days the three day fields select."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 is Sunday
    # robfig's rule: if either day field is a plain `*` or `?`, a day must match both.
    days_and: bool


@dataclass(frozen=True)
class EverySchedule:
    """`@every <duration>`: runs this many seconds apart."""

    seconds: int


Schedule = FieldSchedule | EverySchedule


def _go_int(text: str, item: str, field: str) -> int:
    if not _GO_INT.match(text):
        quoted = repr(text) if text == item else f"{text!r} in {item!r}"
        raise ValueError(f"{field}: {quoted} is not a number" + _names_hint(field))
    number = int(text)
    if number < 0:
        raise ValueError(f"{field}: negative number in {item!r}")
    return number


def _names_hint(field: str) -> str:
    if field == "month":
        return " or a month name (JAN-DEC)"
    if field == "day of week":
        return " or a day name (SUN-SAT; 0 is Sunday, 7 is not a day)"
    return ""


def _parse_range(item: str, bounds: _Bounds) -> tuple[set[int], bool]:
    """The values of one `*`, `N`, `N-M`, each with an optional `/step`, and whether it is a
    star (all values, step 1): what robfig's getRange computes."""
    range_text, *steps = item.split("/")
    if len(steps) > 1:
        raise ValueError(f"{bounds.name}: too many slashes in {item!r}")
    low_high = range_text.split("-")
    star = low_high[0] in ("*", "?")
    if star:
        start, end = bounds.low, bounds.high
    else:
        if len(low_high) > 2:
            raise ValueError(f"{bounds.name}: too many hyphens in {item!r}")
        start = bounds.value(low_high[0], item)
        end = bounds.value(low_high[1], item) if len(low_high) == 2 else start
    step = 1
    if steps:
        step = _go_int(steps[0], item, f"{bounds.name} step")
        if len(low_high) == 1:
            end = bounds.high  # `N/step` means N to the maximum
        star = star and step <= 1
    if start < bounds.low:
        raise ValueError(f"{bounds.name}: {start} in {item!r} is below the minimum {bounds.low}")
    if end > bounds.high:
        raise ValueError(f"{bounds.name}: {end} in {item!r} is above the maximum {bounds.high}")
    if start > end:
        raise ValueError(f"{bounds.name}: the range {item!r} starts after it ends")
    if step == 0:
        raise ValueError(f"{bounds.name}: the step in {item!r} must be positive")
    return set(range(start, end + 1, step)), star


def _parse_field(text: str, bounds: _Bounds) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    # robfig splits with FieldsFunc: empty items (`1,,2`) are skipped, not refused.
    for item in (part for part in text.split(",") if part):
        found, item_star = _parse_range(item, bounds)
        values |= found
        star = star or item_star
    return frozenset(values), star


def _go_duration_nanoseconds(text: str) -> int:
    """time.ParseDuration: `1h30m`, `90s`, `1.5h`, `-5m`, `0`."""
    sign = -1 if text.startswith("-") else 1
    rest = text[1:] if text[:1] in "+-" else text
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"{text!r} is not a duration such as 30m or 1h30m")
    total = 0
    position = 0
    while position < len(rest):
        part = _GO_DURATION_PART.match(rest, position)
        if part is None or not (part.group(1) or (part.group(2) or ".")[1:]):
            raise ValueError(f"{text!r} is not a duration such as 30m or 1h30m")
        whole, fraction, unit = part.group(1) or "0", part.group(2) or ".", part.group(3)
        scale = _NANOSECONDS[unit]
        total += int(whole) * scale + int(fraction[1:] or "0") * scale // 10 ** len(fraction[1:])
        if total > _MAX_GO_DURATION:
            raise ValueError(f"{text!r} is longer than a duration can be")
        position = part.end()
    return sign * total


def _parse_every(text: str) -> EverySchedule:
    nanoseconds = _go_duration_nanoseconds(text[len(_EVERY) :])
    # robfig's Every(): whole seconds, and never less than one.
    return EverySchedule(max(1, nanoseconds // 10**9) if nanoseconds > 0 else 1)


def _parse_fields(text: str) -> FieldSchedule:
    fields = [field for field in _WHITE_SPACE.split(text) if field]
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
        )
    parsed = [_parse_field(field, bounds) for field, bounds in zip(fields, _FIELDS, strict=True)]
    (minutes, _), (hours, _), (doms, dom_star), (months, _), (dows, dow_star) = parsed
    return FieldSchedule(minutes, hours, doms, months, dows, days_and=dom_star or dow_star)


def parse_schedule(text: str) -> Schedule:
    """The schedule, or ValueError saying what Kubernetes (or a schedule that never runs)
    objects to. Examples: `*/15 * * * *`, `0 9 * * MON-FRI`, `@hourly`, `@every 90m`."""
    if not text:
        raise ValueError("must not be empty")
    if "TZ" in text:
        raise ValueError(
            "TZ= and CRON_TZ= are not allowed (Kubernetes refuses them in a CronJob schedule);"
            " the schedule runs in UTC"
        )
    schedule: Schedule
    if text.startswith("@"):
        if text in _DESCRIPTORS:
            schedule = _parse_fields(_DESCRIPTORS[text])
        elif text.startswith(_EVERY):
            schedule = _parse_every(text)
        else:
            known = ", ".join([*_DESCRIPTORS, "@every <duration>"])
            raise ValueError(f"unknown descriptor {text!r}; known: {known}")
    else:
        schedule = _parse_fields(text)
    if isinstance(schedule, FieldSchedule) and not _run_days(schedule):
        raise ValueError("never runs: no date matches its minutes, hours and day fields")
    return schedule


def _runs_on(schedule: FieldSchedule, day: dt.date) -> bool:
    if day.month not in schedule.months:
        return False
    dom = day.day in schedule.days_of_month
    dow = day.isoweekday() % 7 in schedule.days_of_week
    return (dom and dow) if schedule.days_and else (dom or dow)


@functools.lru_cache(maxsize=256)
def _run_days(schedule: FieldSchedule) -> tuple[int, ...]:
    """The days of one 28-year cycle the schedule runs on (empty when it never runs)."""
    if not schedule.minutes or not schedule.hours:
        return ()
    return tuple(
        offset
        for offset in range(_CYCLE_DAYS)
        if _runs_on(schedule, _CYCLE_START + dt.timedelta(days=offset))
    )


def longest_interval_seconds(text: str) -> int:
    """The longest time between two runs of a valid schedule, e.g. 900 for `*/15 * * * *`,
    86400 for `@daily`, 259200 for `0 9 * * MON-FRI` (Friday to Monday)."""
    schedule = parse_schedule(text)
    if isinstance(schedule, EverySchedule):
        return schedule.seconds
    times = sorted(
        hour * 3600 + minute * 60 for hour in schedule.hours for minute in schedule.minutes
    )
    days = _run_days(schedule)
    # The cycle repeats: its first run day follows its last.
    day_gaps = [later - earlier for earlier, later in itertools.pairwise(days)]
    day_gaps.append(days[0] + _CYCLE_DAYS - days[-1])
    across_days = max(day_gaps) * DAY_SECONDS - times[-1] + times[0]
    within_day = [later - earlier for earlier, later in itertools.pairwise(times)]
    return max([across_days, *within_day])

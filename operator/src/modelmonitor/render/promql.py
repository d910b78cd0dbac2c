"""Small PromQL builders, so the rules read as what they compute, not as string soup.

Selectors are data: a `Selector` is a tuple of `Matcher`s, extended with `.with_()` and turned
into `{a="x",b!~"y"}` only when written into an expression.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Matcher:
    """One label matcher: `label op "value"`, the value quoted and escaped as a PromQL string."""

    label: str
    value: str
    op: str = "="

    def __str__(self) -> str:
        return f"{self.label}{self.op}{json.dumps(self.value)}"


@dataclass(frozen=True)
class Selector:
    """The matchers between a metric's braces."""

    matchers: tuple[Matcher, ...] = ()

    @classmethod
    def of(cls, labels: Mapping[str, str], *extra: Matcher) -> Selector:
        """Equality matchers for `labels`, in their order, then `extra`."""
        return cls((*(Matcher(name, value) for name, value in labels.items()), *extra))

    def with_(self, *extra: Matcher) -> Selector:
        return Selector((*self.matchers, *extra))

    def __str__(self) -> str:
        return "{" + ",".join(str(matcher) for matcher in self.matchers) + "}"


def rate(metric: str, selector: Selector, window: str) -> str:
    return f"rate({metric}{selector}[{window}])"


def sum_rate(metric: str, selector: Selector, window: str) -> str:
    return f"sum({rate(metric, selector, window)})"


def number(value: float) -> str:
    """A float without binary noise: 14.4 * 0.005 -> `0.072`."""
    return repr(round(value, 10))

"""Small PromQL builders, so the rules read as what they compute, not as string soup."""

from __future__ import annotations

import json
from collections.abc import Mapping


def matchers(labels: Mapping[str, str], *extra: str) -> str:
    """`{a="x",b="y",<extra>}`; values quoted and escaped as PromQL strings."""
    parts = [f"{name}={json.dumps(value)}" for name, value in labels.items()]
    return "{" + ",".join([*parts, *extra]) + "}"


def rate(metric: str, selector: str, window: str) -> str:
    return f"rate({metric}{selector}[{window}])"


def sum_rate(metric: str, selector: str, window: str) -> str:
    return f"sum({rate(metric, selector, window)})"


def number(value: float) -> str:
    """A float without binary noise: 14.4 * 0.005 -> `0.072`."""
    return repr(round(value, 10))

"""The operator's part of a ModelMonitor's status: observedGeneration, conditions, children.

Conditions: Ready, InvalidSpec, Degraded (this reconcile's outcome) and RulesSelected,
TargetSelected (whether a Prometheus picks up the rules and scrapes the target: pickup.py).

The drift job owns `status.drift` and the DriftDetected condition (docs/contracts.md); both
writers use server-side apply on a list-map keyed by `type`, so neither removes the other's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OPERATOR_CONDITIONS = ("Ready", "InvalidSpec", "Degraded", "RulesSelected", "TargetSelected")


@dataclass(frozen=True)
class Condition:
    """`status` None is Unknown."""

    type: str
    status: bool | None
    reason: str
    message: str


def conditions_for(
    invalid: str | None, problems: Sequence[str], problem_reason: str | None
) -> list[Condition]:
    """Ready, InvalidSpec and Degraded for one reconcile's outcome."""
    if invalid is not None:
        return [
            Condition("Ready", False, "InvalidSpec", invalid),
            Condition("InvalidSpec", True, "InvalidSpec", invalid),
            Condition("Degraded", False, "InvalidSpec", "nothing applied: the spec is invalid"),
        ]
    if problems:
        message = "; ".join(problems)
        reason = problem_reason or "ApiError"
        return [
            Condition("Ready", False, reason, message),
            Condition("InvalidSpec", False, "Valid", "the spec is valid"),
            Condition("Degraded", True, reason, message),
        ]
    return [
        Condition("Ready", True, "Reconciled", "every child is applied"),
        Condition("InvalidSpec", False, "Valid", "the spec is valid"),
        Condition("Degraded", False, "Reconciled", "no API errors"),
    ]


def build_status(
    generation: int,
    conditions: Iterable[Condition],
    children: Sequence[Mapping[str, str]],
    previous: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """The status to apply; lastTransitionTime moves only when a condition's status changes."""
    before = {c.get("type"): c for c in previous.get("conditions") or []}
    rendered = []
    for condition in conditions:
        status = {True: "True", False: "False", None: "Unknown"}[condition.status]
        old = before.get(condition.type) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        rendered.append(
            {
                "type": condition.type,
                "status": status,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": since or now,
                "observedGeneration": generation,
            }
        )
    return {
        "observedGeneration": generation,
        "conditions": rendered,
        "children": [dict(child) for child in children],
    }


def status_unchanged(desired: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether applying `desired` would change nothing the operator owns."""
    if desired.get("observedGeneration") != current.get("observedGeneration"):
        return False
    if list(desired.get("children", [])) != list(current.get("children") or []):
        return False
    mine = {
        c["type"]: c for c in current.get("conditions") or [] if c["type"] in OPERATOR_CONDITIONS
    }
    return all(mine.get(c["type"]) == c for c in desired["conditions"]) and len(mine) == len(
        desired["conditions"]
    )

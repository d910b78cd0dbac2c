"""Converge one monitor: parse, render, adopt, apply what differs, prune, tell whether a
Prometheus picks up the rules and the target (pickup.py), write status.

Writes happen only when something differs: each desired child is compared with the live one
(every rendered field must already hold the rendered value), and the status with the current
status, so a resync of a converged monitor makes no write at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelmonitor.kube import (
    CHILD_KINDS,
    NAMESPACE_TERMINATING,
    ApiCallError,
    KubeApi,
    child_key,
)
from modelmonitor.manifests import API_VERSION, KIND
from modelmonitor.metrics import RECONCILE_DURATION, RECONCILE_TOTAL
from modelmonitor.naming import selector_labels
from modelmonitor.pickup import InventoryCache, pickup_conditions, unknown_for_invalid_spec
from modelmonitor.render import render_children
from modelmonitor.settings import Settings
from modelmonitor.spec import InvalidSpecError, parse_monitor
from modelmonitor.status import Condition, build_status, conditions_for, status_unchanged

# (event type, reason, message) -> posted as a Kubernetes Event on the monitor.
EventSink = Callable[[str, str, str], Awaitable[None] | None]


@dataclass
class Outcome:
    """What one reconcile did, for events, status, handler return and tests."""

    invalid: InvalidSpecError | None = None
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    problems: list[ApiCallError] = field(default_factory=list)
    status_written: bool = False

    @property
    def retryable(self) -> bool:
        return any(problem.retryable for problem in self.problems)

    @property
    def namespace_terminating(self) -> bool:
        """The monitor's namespace is being deleted: the monitor goes with it."""
        return any(problem.reason == NAMESPACE_TERMINATING for problem in self.problems)


def is_subset(desired: Any, current: Any) -> bool:
    """Whether every field of `desired` holds the same value in `current` (extras allowed)."""
    if isinstance(desired, Mapping):
        return isinstance(current, Mapping) and all(
            key in current and is_subset(value, current[key]) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(desired) == len(current)
            and all(is_subset(d, c) for d, c in zip(desired, current, strict=True))
        )
    return bool(desired == current)


def owner_reference(monitor: Mapping[str, Any]) -> dict[str, Any]:
    metadata = monitor["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def _label(key: tuple[str, str, str]) -> str:
    return f"{key[1]}/{key[2]}"


def _has_children(body: Mapping[str, Any]) -> bool:
    """False for a monitor never reconciled: nothing to compare or prune, so skip the lists.

    (If a crash came between its applies and its status, the applies repeat: they are
    idempotent, and the next resync lists and prunes as usual.)
    """
    return bool((body.get("status") or {}).get("children"))


async def _converge_kind(
    api: KubeApi,
    body: Mapping[str, Any],
    kind: tuple[str, str],
    wanted: Mapping[tuple[str, str, str], dict[str, Any]],
    outcome: Outcome,
) -> None:
    """List the live children of one kind; apply the ones that differ, delete the unwanted."""
    metadata = body["metadata"]
    try:
        live = (
            await api.list_children(*kind, metadata["namespace"], selector_labels(metadata["name"]))
            if _has_children(body)
            else []
        )
    except ApiCallError as problem:
        outcome.problems.append(problem)
        return
    current = {child_key(obj): obj for obj in live if _owned_by(obj, metadata["uid"])}
    for key, child in wanted.items():
        if key[:2] != kind or is_subset(child, current.get(key)):
            continue
        try:
            await api.apply(child)
            outcome.applied.append(_label(key))
        except ApiCallError as problem:
            outcome.problems.append(problem)
    for key, obj in current.items():
        if key not in wanted:
            try:
                await api.delete(obj)
                outcome.pruned.append(_label(key))
            except ApiCallError as problem:
                outcome.problems.append(problem)


_ROLE_BINDING = ("rbac.authorization.k8s.io/v1", "RoleBinding")


async def _converge_children(
    api: KubeApi, body: Mapping[str, Any], desired: list[dict[str, Any]], outcome: Outcome
) -> None:
    # Kinds converge concurrently (two round trips per monitor instead of a dozen), all but
    # one: the API server checks a RoleBinding against the Role it names (the operator holds
    # no `bind` verb), so a binding applied before its Role fails with a 404.
    wanted = {child_key(child): child for child in desired}
    await asyncio.gather(
        *(
            _converge_kind(api, body, kind, wanted, outcome)
            for kind in CHILD_KINDS
            if kind != _ROLE_BINDING
        )
    )
    await _converge_kind(api, body, _ROLE_BINDING, wanted, outcome)


def _rule_labels(desired: list[dict[str, Any]]) -> dict[str, str]:
    for child in desired:
        if child["kind"] == "PrometheusRule":
            return dict(child["metadata"].get("labels") or {})
    return {}


async def reconcile(
    api: KubeApi,
    settings: Settings,
    body: Mapping[str, Any],
    post_event: EventSink,
    inventory: InventoryCache,
) -> Outcome:
    """Bring one monitor's children and status in line with its spec. Never raises ApiCallError."""
    started = time.perf_counter()
    outcome = Outcome()
    desired: list[dict[str, Any]] = []
    pickup = unknown_for_invalid_spec()
    try:
        monitor = parse_monitor(body)
    except InvalidSpecError as error:
        outcome.invalid = error
    else:
        desired = render_children(monitor, settings)
        reference = owner_reference(body)
        for child in desired:
            child["metadata"]["ownerReferences"] = [reference]
        await _converge_children(api, body, desired, outcome)
        if not outcome.namespace_terminating:
            pickup = await pickup_conditions(api, inventory, monitor, _rule_labels(desired))
    if outcome.namespace_terminating:
        # Neither a status nor Warning events (both would fail or be deleted): the namespace
        # controller is deleting the children and the monitor itself.
        RECONCILE_TOTAL.labels(result="namespace_terminating").inc()
        return outcome
    await _write_status(api, body, desired, outcome, pickup)
    await _post_events(outcome, post_event)
    result = "invalid" if outcome.invalid else ("error" if outcome.problems else "ok")
    RECONCILE_TOTAL.labels(result=result).inc()
    RECONCILE_DURATION.observe(time.perf_counter() - started)
    return outcome


async def _write_status(
    api: KubeApi,
    body: Mapping[str, Any],
    desired: list[dict[str, Any]],
    outcome: Outcome,
    pickup: list[Condition],
) -> None:
    metadata = body["metadata"]
    problems = [str(problem) for problem in outcome.problems]
    reason = outcome.problems[0].reason if outcome.problems else None
    conditions = conditions_for(str(outcome.invalid) if outcome.invalid else None, problems, reason)
    conditions += pickup
    children = [
        {"apiVersion": c["apiVersion"], "kind": c["kind"], "name": c["metadata"]["name"]}
        for c in desired
    ]
    current = body.get("status") or {}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = build_status(metadata.get("generation", 0), conditions, children, current, now)
    if status_unchanged(status, current):
        return
    try:
        await api.apply_status(metadata["namespace"], metadata["name"], status)
        outcome.status_written = True
    except ApiCallError as problem:
        outcome.problems.append(problem)


async def _post_events(outcome: Outcome, post_event: EventSink) -> None:
    messages: list[tuple[str, str, str]] = []
    if outcome.invalid is not None and outcome.status_written:
        messages.append(("Warning", "InvalidSpec", str(outcome.invalid)))
    if outcome.applied:
        messages.append(("Normal", "Applied", "applied " + ", ".join(outcome.applied)))
    if outcome.pruned:
        messages.append(("Normal", "Pruned", "deleted " + ", ".join(outcome.pruned)))
    if outcome.status_written:  # a lasting problem is told once, when it starts
        messages += [("Warning", p.reason, p.message) for p in outcome.problems]
    for event_type, reason, message in messages:
        posted = post_event(event_type, reason, message)
        if posted is not None:
            await posted

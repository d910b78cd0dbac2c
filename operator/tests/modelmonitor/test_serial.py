"""One reconcile of a monitor at a time: PerKeySerial and how the operator uses it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelmonitor import handlers
from modelmonitor.kube import NAMESPACE_TERMINATING, ApiCallError
from modelmonitor.reconcile import Outcome
from modelmonitor.serial import PerKeySerial
from modelmonitor.settings import Settings


def test_turns_of_one_key_never_overlap_and_other_keys_do_not_wait() -> None:
    serial = PerKeySerial()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    a_inside_when_b_ran: list[int] = []

    async def work(key: str) -> None:
        async with serial.turn(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            if key == "b":
                a_inside_when_b_ran.append(inside["a"])
            await asyncio.sleep(0.01)
            inside[key] -= 1

    async def main() -> None:
        await asyncio.gather(*(work(key) for key in "aaaab"))

    asyncio.run(main())
    assert most == {"a": 1, "b": 1}
    assert a_inside_when_b_ran == [1]  # "b" did not queue behind the turns of "a"
    assert serial._locks == {}  # nothing kept once idle
    assert serial._waiting == {}


def test_queued_says_whether_a_turn_is_already_waiting() -> None:
    serial = PerKeySerial()
    seen: list[bool] = []

    async def main() -> None:
        release = asyncio.Event()

        async def holder() -> None:
            async with serial.turn("k"):
                await release.wait()

        async def waiter() -> None:
            async with serial.turn("k"):
                pass

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        seen.append(serial.queued("k"))  # held, nobody waiting
        second = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        seen.append(serial.queued("k"))
        release.set()
        await asyncio.gather(first, second)
        seen.append(serial.queued("k"))

    asyncio.run(main())
    assert seen == [False, True, False]


def test_a_turn_cancelled_while_waiting_leaves_nothing_behind() -> None:
    serial = PerKeySerial()

    async def main() -> None:
        release = asyncio.Event()

        async def holder() -> None:
            async with serial.turn("k"):
                await release.wait()

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiting = asyncio.create_task(serial.turn("k").__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        await first

    asyncio.run(main())
    assert serial._locks == {}
    assert serial._waiting == {}


def _monitor(namespace: str = "team-a", name: str = "credit-score") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name}, "spec": {}}


def _terminating() -> Outcome:
    error = ApiCallError(NAMESPACE_TERMINATING, "namespace team-a is being terminated", False)
    return Outcome(problems=[error])


def test_a_burst_of_child_deletions_in_a_terminating_namespace_makes_one_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six children deleted together: one reconcile tries and learns; the rest stand down."""
    calls: list[str] = []

    async def refused(api: Any, settings: Any, body: Any, post: Any, inventory: Any) -> Outcome:
        calls.append(body["metadata"]["name"])
        await asyncio.sleep(0.01)  # the API round trip: the other deletions arrive meanwhile
        return _terminating()

    monkeypatch.setattr(handlers, "reconcile", refused)
    operator = handlers.Operator(Settings())
    operator.api = object()  # type: ignore[assignment]

    async def burst() -> list[Outcome]:
        restores = [operator.reconcile(_monitor(), unless_queued=True) for _ in range(6)]
        return await asyncio.gather(*restores)

    outcomes = asyncio.run(burst())
    assert calls == ["credit-score"]
    assert sum(outcome.namespace_terminating for outcome in outcomes) == 1


def test_restores_behind_a_running_reconcile_collapse_into_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A converging namespace: the running reconcile may have listed before the deletions, so
    exactly one more runs after it; the other requests are served by that one."""
    calls: list[str] = []

    async def converges(api: Any, settings: Any, body: Any, post: Any, inventory: Any) -> Outcome:
        calls.append(body["metadata"]["name"])
        await asyncio.sleep(0.01)
        return Outcome(applied=["CronJob/credit-score-drift"])

    monkeypatch.setattr(handlers, "reconcile", converges)
    operator = handlers.Operator(Settings())
    operator.api = object()  # type: ignore[assignment]

    async def burst() -> None:
        await asyncio.gather(
            *(operator.reconcile(_monitor(), unless_queued=True) for _ in range(6)),
            operator.reconcile(_monitor(name="other"), unless_queued=True),
        )

    asyncio.run(burst())
    assert sorted(calls) == ["credit-score", "credit-score", "other"]

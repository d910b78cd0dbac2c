"""One reconcile of a monitor at a time, and no pile-up of requests behind it.

kopf serialises the handlers of one object, but a monitor is reconciled from several objects:
its own handlers, its timer and the watch on each of its six children. When a namespace is
deleted, its children go together and each deletion would start a reconcile of the same
monitor at once, every one of them writing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class PerKeySerial:
    """A lock per key that exists only while someone holds it or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._waiting: dict[Hashable, int] = {}

    def queued(self, key: Hashable) -> bool:
        """Whether a turn for `key` is already waiting: it will see whatever happened since."""
        return self._waiting.get(key, 0) > 0

    @asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            await lock.acquire()
        except BaseException:  # cancelled while waiting
            self._stop_waiting(key)
            self._forget_if_idle(key, lock)
            raise
        self._stop_waiting(key)
        try:
            yield
        finally:
            lock.release()
            self._forget_if_idle(key, lock)

    def _stop_waiting(self, key: Hashable) -> None:
        self._waiting[key] -= 1
        if not self._waiting[key]:
            del self._waiting[key]

    def _forget_if_idle(self, key: Hashable, lock: asyncio.Lock) -> None:
        # A woken waiter still counts as waiting until it holds the lock, so it is kept.
        if not lock.locked() and key not in self._waiting:
            self._locks.pop(key, None)

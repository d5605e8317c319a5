"""One background task per key (a batch run's driver): started once, waited for, stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class Drivers:
    """The driver tasks of one kind of job in this process, by run id."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def start(self, key: int, drive: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start `drive()` for this key unless its driver is already working."""
        if not self.active(key):
            self._tasks[key] = asyncio.create_task(drive(), name=f"{self._name}-{key}")

    def active(self, key: int) -> bool:
        """Whether the key's driver is working here."""
        task = self._tasks.get(key)
        return task is not None and not task.done()

    async def wait(self, key: int) -> None:
        """Wait until the key's driver has finished (at once if none is active)."""
        task = self._tasks.get(key)
        if task is not None:
            await asyncio.wait([task])

    async def stop(self, key: int) -> None:
        """Cancel the key's driver and wait until it has unwound."""
        task = self._tasks.pop(key, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop_all(self) -> None:
        """Stop every driver."""
        for key in list(self._tasks):
            await self.stop(key)

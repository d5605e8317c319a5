"""A generation's text as it grows, and the broadcast that wakes whoever shows it."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


class Signal:
    """Wakes every waiter each time it fires (a broadcast, unlike asyncio.Event)."""

    def __init__(self) -> None:
        self._future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fire(self) -> None:
        """Wake all current waiters."""
        if not self._future.done():
            self._future.set_result(None)
        self._future = asyncio.get_running_loop().create_future()

    async def wait(self, max_wait: float) -> None:
        """Return when fired or after max_wait seconds, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._future), max_wait)


@dataclass
class LiveGeneration:
    """A generation in progress: the text so far, visible to every subscriber."""

    generation_id: int
    # What the generation belongs to (a turn, later a run): subscribers wait on a group.
    group: int
    finished: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    # Deltas are appended, and joined only when someone reads the text: `text += delta` per
    # token copied the whole answer every time.
    _parts: list[str] = field(default_factory=list, repr=False)
    _length: int = 0

    @property
    def text(self) -> str:
        """Everything generated so far."""
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def length(self) -> int:
        """len(text), without joining."""
        return self._length

    def append(self, delta: str) -> None:
        """Add newly generated text."""
        self._parts.append(delta)
        self._length += len(delta)

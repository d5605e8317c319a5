"""Generations running in other processes: follow their text live, and stop them there.

A process showing a generation that another process runs (its `owner`) asks the owner to be
told its text: "follow". The owner answers with the whole text so far, then every
PUBLISH_SECONDS with what is new (text from an offset: repeats are harmless, gaps cannot
happen because one sender's messages arrive in order), and "end" once the final row is stored.
The follower keeps a mirror (a LiveGeneration) that the stream reads exactly like a local
one. Nothing is published for a generation nobody follows, so the token path costs the same
as with one process; a follower's mirror is checked against the database every
POLL_SECONDS, so a lost message or a dead owner (whose rows the heartbeat sweep marks
interrupted) ends the mirror too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.generation.fanout import EVERYONE, Fanout, Message
from app.generation.live import LiveGeneration
from app.generation.records import Generation, GenerationStatus

log = logging.getLogger(__name__)

# The owner sends new text to followers at most this often (one message per generation).
PUBLISH_SECONDS = 0.05
# A follower re-reads its mirrors' rows this often (ends them once stored as finished).
POLL_SECONDS = 1.0
# Text is sent in pieces of at most this many characters: with JSON escapes (6 bytes at
# worst per character) a piece stays well under PostgreSQL's 8000-byte payload limit.
TEXT_CHUNK_CHARS = 1000


class RemoteJobs:
    """Mirrors of generations running elsewhere, and this process's followers."""

    def __init__(
        self,
        fanout: Fanout,
        owner: str | None,
        sessions: async_sessionmaker[AsyncSession],
        *,
        live_of: Callable[[int], LiveGeneration | None],
        cancel: Callable[[Iterable[int]], int],
        changed: Callable[[int], None],
        publish_seconds: float = PUBLISH_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._fanout = fanout
        self._owner = owner
        self._sessions = sessions
        self._live_of = live_of
        self._cancel = cancel
        self._changed = changed
        self._publish_seconds = publish_seconds
        self._poll_seconds = poll_seconds
        # Follower side: generation id -> its mirror, and when recently ended mirrors ended.
        self.mirrors: dict[int, LiveGeneration] = {}
        self._mirror_owner: dict[int, str] = {}
        self._ended: dict[int, float] = {}
        # Owner side: generation id -> {follower: characters already sent}.
        self._followers: dict[int, dict[str, int]] = {}
        self._publisher: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        # Messages of the layers above (e.g. "stop this batch run"), by their "op".
        self._handlers: dict[str, Callable[[Message], None]] = {}

    @property
    def enabled(self) -> bool:
        """Whether other processes can be reached (PostgreSQL fan-out, and an owner id)."""
        return self._fanout.enabled and self._owner is not None

    async def start(self) -> None:
        """Listen for messages addressed to this process."""
        if self.enabled:
            assert self._owner is not None
            await self._fanout.start(self._owner, self.on_message)

    async def close(self) -> None:
        """Stop publishing, watching and listening."""
        for task in (self._publisher, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._fanout.close()

    def follow(self, generation_id: int, group: int, owner: str | None) -> bool:
        """Mirror a generation that `owner` runs; False when it cannot be followed from here."""
        if not self.enabled or owner is None or owner == self._owner:
            return False
        if generation_id in self.mirrors:
            return True
        now = asyncio.get_running_loop().time()
        ended = self._ended.get(generation_id)
        if ended is not None and now - ended < self._poll_seconds:
            # Just ended, yet its row was read as unfinished: let the database catch up.
            return False
        self.mirrors[generation_id] = LiveGeneration(generation_id, group)
        self._mirror_owner[generation_id] = owner
        self._send_follow(generation_id)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch(), name="fanout-watchdog")
        return True

    def cancel_elsewhere(self, jobs: Iterable[tuple[int, str | None]]) -> int:
        """Ask the owners of these generations to stop them; returns how many were asked."""
        by_owner: dict[str, list[int]] = {}
        for generation_id, owner in jobs:
            if self.enabled and owner is not None and owner != self._owner:
                by_owner.setdefault(owner, []).append(generation_id)
        for owner, ids in by_owner.items():
            self._fanout.send(owner, {"op": "cancel", "ids": ids})
        return sum(len(ids) for ids in by_owner.values())

    def handle(self, op: str, handler: Callable[[Message], None]) -> None:
        """Run `handler` for every message with this "op" (a layer above's own control)."""
        self._handlers[op] = handler

    def broadcast(self, message: Message) -> None:
        """Send a message to every other process (the caller acts on it here itself)."""
        if self.enabled:
            self._fanout.send(EVERYONE, {**message, "from": self._owner})

    def ended(self, generation_id: int) -> None:
        """The owner stored a generation's final row: tell its followers."""
        for follower in self._followers.pop(generation_id, {}):
            self._fanout.send(follower, {"op": "end", "id": generation_id})

    def on_message(self, message: Message) -> None:
        """Handle one message from another process (malformed ones are ignored)."""
        op, generation_id = message.get("op"), message.get("id")
        handler = self._handlers.get(op) if isinstance(op, str) else None
        if handler is not None:
            # A broadcast comes back to its sender too; it has acted already (and may have
            # acted again since: a retry relaunches the run it just stopped).
            if message.get("from") != self._owner:
                handler(message)
            return
        if op == "cancel":
            ids = message.get("ids")
            if isinstance(ids, list):
                self._cancel(i for i in ids if isinstance(i, int))
            return
        if not isinstance(generation_id, int):
            return
        if op == "text":
            at, text = message.get("at"), message.get("t")
            if isinstance(at, int) and isinstance(text, str):
                self._on_text(generation_id, at, text)
        elif op == "end":
            self._end_mirror(generation_id)
        elif op == "follow":
            follower = message.get("from")
            if isinstance(follower, str):
                self._on_follow(generation_id, follower)

    def _send_follow(self, generation_id: int) -> None:
        owner = self._mirror_owner[generation_id]
        self._fanout.send(owner, {"op": "follow", "id": generation_id, "from": self._owner})

    def _on_text(self, generation_id: int, at: int, text: str) -> None:
        mirror = self.mirrors.get(generation_id)
        if mirror is None or at > mirror.length:
            return
        fresh = text[mirror.length - at :]
        if fresh:
            mirror.append(fresh)
            self._changed(mirror.group)

    def _end_mirror(self, generation_id: int) -> None:
        mirror = self.mirrors.pop(generation_id, None)
        self._mirror_owner.pop(generation_id, None)
        if mirror is None:
            return
        mirror.finished = True
        now = asyncio.get_running_loop().time()
        self._ended = {g: t for g, t in self._ended.items() if now - t < self._poll_seconds}
        self._ended[generation_id] = now
        self._changed(mirror.group)

    def _on_follow(self, generation_id: int, follower: str) -> None:
        if self._live_of(generation_id) is None:
            # Not running here (any more): its row is final, or its owner is someone else.
            self._fanout.send(follower, {"op": "end", "id": generation_id})
            return
        # From the start: a follower that follows again (it reconnected) lost nothing.
        self._followers.setdefault(generation_id, {})[follower] = 0
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_loop(), name="fanout-publish")

    async def _publish_loop(self) -> None:
        while self._followers:
            self._publish()
            await asyncio.sleep(self._publish_seconds)

    def _publish(self) -> None:
        for generation_id, followers in self._followers.items():
            live = self._live_of(generation_id)
            if live is None:
                continue  # ended() tells its followers once the row is stored
            length = live.length
            for follower, sent in followers.items():
                if sent >= length:
                    continue
                text = live.text
                for at in range(sent, length, TEXT_CHUNK_CHARS):
                    piece = text[at : min(at + TEXT_CHUNK_CHARS, length)]
                    self._fanout.send(
                        follower, {"op": "text", "id": generation_id, "at": at, "t": piece}
                    )
                followers[follower] = length

    async def _watch(self) -> None:
        """End mirrors whose rows are finished (a lost "end", or an owner that died)."""
        while self.mirrors:
            await asyncio.sleep(self._poll_seconds)
            ids = list(self.mirrors)
            try:
                async with self._sessions() as session:
                    rows = await session.execute(
                        select(Generation.id, Generation.status).where(Generation.id.in_(ids))
                    )
                    status = dict(rows.tuples().all())
            except Exception:
                log.exception("fan-out: could not check followed generations")
                continue
            for generation_id in ids:
                stored = status.get(generation_id)
                if stored is None or GenerationStatus(stored).finished:
                    self._end_mirror(generation_id)
                elif (mirror := self.mirrors.get(generation_id)) is not None and not mirror.length:
                    # Nothing heard yet: the follow may have been lost (the owner reconnecting).
                    self._send_follow(generation_id)

"""Runs generations as background tasks, broadcasts their progress, and stores every outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.generation.client import Finished, ModelClient, TextDelta
from app.generation.contract import GenerationRequest
from app.generation.errors import ModelServerError
from app.generation.lora_gate import LoraGates
from app.generation.records import Generation, GenerationStatus

log = logging.getLogger(__name__)


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


@dataclass
class Outcome:
    """How a generation ended, ready to be stored."""

    status: GenerationStatus
    finish_reason: str | None = None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens: list[dict[str, Any]] | None = None


# Subscribers are woken at most this often per group while tokens stream: they relay text in
# coalesced events anyway, and waking every subscriber for every token cost more than relaying.
# The first token of a quiet group wakes them at once (time to first token).
WAKE_INTERVAL_SECONDS = 0.02


class GenerationRunner:
    """Owns every running generation task in this process."""

    def __init__(
        self,
        client: ModelClient,
        sessions: async_sessionmaker[AsyncSession],
        lora_gates: LoraGates | None = None,
        wake_interval: float = WAKE_INTERVAL_SECONDS,
        owner: str | None = None,
    ) -> None:
        # This process's id in app_instances, stamped on every generation it runs.
        self.owner = owner
        self._client = client
        self._sessions = sessions
        self._lora_gates = lora_gates or LoraGates(lambda _request: False)
        self._live: dict[int, LiveGeneration] = {}
        self._group_signals: dict[int, Signal] = {}
        self._wake_interval = wake_interval
        # Per group: when subscribers were last woken, and a wake-up already scheduled.
        self._last_wake: dict[int, float] = {}
        self._pending_wake: dict[int, asyncio.TimerHandle] = {}

    def start(self, generation_id: int, group: int, request: GenerationRequest) -> None:
        """Start a job; its row must already be committed with status pending."""
        live = LiveGeneration(generation_id, group)
        self._live[generation_id] = live
        self._group_signals.setdefault(group, Signal())
        live.task = asyncio.create_task(
            self._run(live, request), name=f"generation-{generation_id}"
        )

    def snapshot(self, generation_id: int) -> LiveGeneration | None:
        """The live state of a running generation, or None once it is stored and gone."""
        return self._live.get(generation_id)

    async def wait_for_change(self, group: int, max_wait: float) -> None:
        """Wait until any job of a group makes progress (or max_wait seconds pass)."""
        signal = self._group_signals.get(group)
        if signal is None:
            # Not running here (finished, or running in another replica): poll gently.
            await asyncio.sleep(min(max_wait, 1.0))
        else:
            await signal.wait(max_wait)

    def cancel(self, generation_ids: Iterable[int]) -> int:
        """Stop these jobs if they run here; returns how many were stopped."""
        stopped = 0
        for generation_id in generation_ids:
            live = self._live.get(generation_id)
            if live is not None and live.task is not None and not live.task.done():
                live.task.cancel()
                stopped += 1
        return stopped

    def cancel_group(self, group: int) -> int:
        """Stop every running job of a group; returns how many were stopped."""
        return self.cancel([g.generation_id for g in self._live.values() if g.group == group])

    async def wait_finished(self, generation_ids: Iterable[int]) -> None:
        """Wait until these generations have finished and been stored."""
        tasks = [
            live.task
            for gid in generation_ids
            if (live := self._live.get(gid)) is not None and live.task is not None
        ]
        if tasks:
            await asyncio.wait(tasks)

    async def shutdown(self) -> None:
        """Cancel everything still running and wait until the partial results are stored."""
        tasks = [live.task for live in self._live.values() if live.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _run(self, live: LiveGeneration, request: GenerationRequest) -> None:
        """Generate, then store the outcome whatever happened; never loses partial text."""
        started = time.perf_counter()
        ttft_ms: float | None = None
        outcome = Outcome(GenerationStatus.ERROR, "error", "internal error")
        cancelled = False
        # Marking the row running must not delay the first token (SQLite serialises writes, so
        # with many comparisons at once it would): it runs beside the request, and is awaited
        # before the final store so that it can never land after it.
        marked_running = asyncio.create_task(
            self._store(live.generation_id, status=GenerationStatus.RUNNING, owner=self.owner)
        )
        try:
            async with self._lora_gates.hold(request):
                async for event in self._client.stream(request):
                    if isinstance(event, TextDelta):
                        if ttft_ms is None:
                            ttft_ms = (time.perf_counter() - started) * 1000
                        live.append(event.text)
                        self._progress(live.group)
                    elif isinstance(event, Finished):
                        outcome = Outcome(
                            GenerationStatus.DONE,
                            event.finish_reason,
                            None,
                            event.prompt_tokens,
                            event.completion_tokens,
                            None if event.tokens is None else [t.to_json() for t in event.tokens],
                        )
        except ModelServerError as exc:
            outcome = Outcome(GenerationStatus.ERROR, "error", str(exc))
        except asyncio.CancelledError:
            cancelled = True
            outcome = Outcome(GenerationStatus.CANCELLED, "cancelled", None)
        except Exception as exc:
            log.exception("generation %s failed", live.generation_id)
            outcome = Outcome(
                GenerationStatus.ERROR, "error", f"internal error: {type(exc).__name__}"
            )
        finally:
            total_ms = (time.perf_counter() - started) * 1000
            # Stored before the live entry disappears, so a subscriber always finds the text.
            await asyncio.shield(self._finish(live, outcome, ttft_ms, total_ms, marked_running))
        if cancelled:
            raise asyncio.CancelledError

    async def _finish(
        self,
        live: LiveGeneration,
        outcome: Outcome,
        ttft_ms: float | None,
        total_ms: float,
        marked_running: asyncio.Task[None],
    ) -> None:
        """Store the final row, then retire the live entry and wake subscribers."""
        try:
            await asyncio.gather(marked_running, return_exceptions=True)
            await self._store(
                live.generation_id,
                status=outcome.status,
                text=live.text,
                finish_reason=outcome.finish_reason,
                error=outcome.error,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                tokens=outcome.tokens,
                ttft_ms=ttft_ms,
                total_ms=total_ms,
                finished_at=utcnow(),
            )
        except Exception:
            log.exception("could not store generation %s", live.generation_id)
        finally:
            live.finished = True
            self._live.pop(live.generation_id, None)
            self._fire(live.group)
            if not any(other.group == live.group for other in self._live.values()):
                self._group_signals.pop(live.group, None)
                self._last_wake.pop(live.group, None)
                handle = self._pending_wake.pop(live.group, None)
                if handle is not None:
                    handle.cancel()

    def _progress(self, group: int) -> None:
        """New text in a group: wake its subscribers now, or once at the end of the interval."""
        if group in self._pending_wake:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_wake.get(group, float("-inf")) + self._wake_interval - loop.time()
        if wait <= 0:
            self._fire(group)
        else:
            self._pending_wake[group] = loop.call_later(wait, self._scheduled_fire, group)

    def _scheduled_fire(self, group: int) -> None:
        self._pending_wake.pop(group, None)
        self._fire(group)

    def _fire(self, group: int) -> None:
        self._last_wake[group] = asyncio.get_running_loop().time()
        signal = self._group_signals.get(group)
        if signal is not None:
            signal.fire()

    async def _store(self, generation_id: int, **values: object) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Generation).where(Generation.id == generation_id).values(**values)
            )

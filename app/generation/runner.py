"""Runs generations as background tasks, broadcasts their progress, and stores every outcome."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.generation.client import Finished, ModelClient, TextDelta
from app.generation.contract import GenerationRequest
from app.generation.errors import ModelServerError
from app.generation.fanout import Fanout, LocalFanout
from app.generation.live import LiveGeneration, Signal
from app.generation.logprobs import TokenInfo
from app.generation.lora_gate import LoraGates
from app.generation.records import Generation, GenerationStatus
from app.generation.remote import RemoteJobs

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """How a generation ended, ready to be stored."""

    status: GenerationStatus
    finish_reason: str | None = None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Stored as their to_json dicts (app.text.json_dumps writes them without the copy).
    tokens: list[TokenInfo] | None = None


# Subscribers are woken at most this often per group while tokens stream: they relay text in
# coalesced events anyway, and waking every subscriber for every token cost more than relaying.
# The first token of a quiet group wakes them at once (time to first token).
WAKE_INTERVAL_SECONDS = 0.02


class GenerationRunner:
    """Owns every running generation task in this process, and follows and stops those that
    run in other processes (app.generation.remote)."""

    def __init__(
        self,
        client: ModelClient,
        sessions: async_sessionmaker[AsyncSession],
        lora_gates: LoraGates | None = None,
        wake_interval: float = WAKE_INTERVAL_SECONDS,
        owner: str | None = None,
        fanout: Fanout | None = None,
        poll_seconds: float | None = None,
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
        poll = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
        self.remote = RemoteJobs(
            fanout or LocalFanout(),
            owner,
            sessions,
            live_of=self._live.get,
            cancel=self.cancel,
            changed=self._remote_changed,
            **poll,
        )

    def start(self, generation_id: int, group: int, request: GenerationRequest) -> None:
        """Start a job; its row must already be committed with status pending."""
        live = LiveGeneration(generation_id, group)
        self._live[generation_id] = live
        self._group_signals.setdefault(group, Signal())
        live.task = asyncio.create_task(
            self._run(live, request), name=f"generation-{generation_id}"
        )

    def snapshot(self, generation_id: int) -> LiveGeneration | None:
        """The live state of a generation running here or followed from elsewhere, or None
        once it is stored and gone."""
        return self._live.get(generation_id) or self.remote.mirrors.get(generation_id)

    def follow(self, generation_id: int, group: int, owner: str | None) -> bool:
        """Mirror a generation that another process runs, so that snapshot() shows its text
        and the group's waiters wake as it grows; False when that cannot be done."""
        if owner is None or owner == self.owner:
            return False
        self._group_signals.setdefault(group, Signal())
        followed = self.remote.follow(generation_id, group, owner)
        if not followed:
            self._release(group)
        return followed

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

    def stop(self, jobs: Iterable[tuple[int, str | None]]) -> int:
        """Stop these generations (id, owner) wherever they run; returns how many were
        stopped here or asked to stop in their own process."""
        jobs = list(jobs)
        here = self.cancel(generation_id for generation_id, _ in jobs)
        return here + self.remote.cancel_elsewhere(
            (gid, owner) for gid, owner in jobs if gid not in self._live
        )

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
        await self.remote.close()

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
                            event.tokens,
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
            self.remote.ended(live.generation_id)
            self._fire(live.group)
            self._release(live.group)

    def _remote_changed(self, group: int) -> None:
        """A followed generation grew or ended: wake the group's waiters."""
        self._fire(group)
        self._release(group)

    def _release(self, group: int) -> None:
        """Forget a group's signal once nothing of it runs here or is followed from here."""
        if any(g.group == group for g in self._live.values()) or any(
            g.group == group for g in self.remote.mirrors.values()
        ):
            return
        self._group_signals.pop(group, None)
        self._last_wake.pop(group, None)
        handle = self._pending_wake.pop(group, None)
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

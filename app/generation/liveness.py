"""Which process owns a running generation, and whether that process is still alive.

Each app process (a worker, a replica) registers itself in `app_instances` and beats a
heartbeat there; the runner stamps every generation it runs with its owner id. A generation
left pending or running is interrupted only when its owner's heartbeat is stale (or its
owner is unknown and the row is old): a second replica starting on the same database no
longer marks the first one's live generations interrupted, and a replica that dies has its
generations marked by whichever process sweeps next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.generation.records import AppInstance, Generation, GenerationStatus

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
# A process that missed this many beats is taken for dead (a blocked event loop or a busy
# database can delay a beat; a dead process never beats again).
STALE_AFTER_SECONDS = 6 * HEARTBEAT_SECONDS


def new_owner_id() -> str:
    """An id for this process, unique across hosts and restarts."""
    return uuid.uuid4().hex


async def sweep_interrupted(
    sessions: async_sessionmaker[AsyncSession], stale_after: float = STALE_AFTER_SECONDS
) -> int:
    """Mark interrupted the unfinished generations whose owner is gone; returns how many."""
    cutoff = utcnow() - timedelta(seconds=stale_after)
    alive = select(AppInstance.id).where(AppInstance.heartbeat_at >= cutoff)
    unfinished = (GenerationStatus.PENDING, GenerationStatus.RUNNING)
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(Generation)
            .where(Generation.status.in_(unfinished))
            .where(
                or_(
                    Generation.owner.not_in(alive),
                    # Rows from before owners were recorded, or not yet picked up by a runner.
                    Generation.owner.is_(None) & (Generation.created_at < cutoff),
                )
            )
            .values(
                status=GenerationStatus.INTERRUPTED,
                finish_reason="interrupted",
                error="the process running this generation stopped before it finished",
            )
            .execution_options(synchronize_session=False)
        )
        # Forget long-dead processes (their generations are settled by now).
        await session.execute(
            delete(AppInstance).where(AppInstance.heartbeat_at < cutoff - timedelta(days=1))
        )
    return int(getattr(result, "rowcount", 0) or 0)


class Heartbeat:
    """Registers this process and keeps its heartbeat fresh; sweeps dead owners' work."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        interval: float = HEARTBEAT_SECONDS,
        stale_after: float = STALE_AFTER_SECONDS,
    ) -> None:
        self._sessions = sessions
        self.owner = owner
        self._interval = interval
        self._stale_after = stale_after
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Register, sweep once (a restart's leftovers), then beat in the background."""
        await self._beat()
        swept = await sweep_interrupted(self._sessions, self._stale_after)
        self._task = asyncio.create_task(self._loop(), name="heartbeat")
        return swept

    async def stop(self) -> None:
        """Stop beating and unregister (call after the runner has stored its generations)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        async with self._sessions() as session, session.begin():
            await session.execute(delete(AppInstance).where(AppInstance.id == self.owner))

    async def _beat(self) -> None:
        async with self._sessions() as session, session.begin():
            updated = await session.execute(
                update(AppInstance)
                .where(AppInstance.id == self.owner)
                .values(heartbeat_at=utcnow())
            )
            if not getattr(updated, "rowcount", 0):
                session.add(AppInstance(id=self.owner))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._beat()
                swept = await sweep_interrupted(self._sessions, self._stale_after)
                if swept:
                    log.warning("marked %d generations of a stopped process interrupted", swept)
            except Exception:
                # A missed beat is survivable; a dead heartbeat task would make us look dead.
                log.exception("heartbeat failed")

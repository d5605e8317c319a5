"""SQLite: the votes waiting for the write queue are written together, one transaction a batch.

Each statement is several hops to aiosqlite's thread, and between hops the event loop serves
every other request first; with one writer at a time, that latency (not CPU) capped SQLite at
under 100 votes/s. Whoever holds the queue now writes every vote queued behind it: one
multi-row judgement upsert, one executemany of the entries, one commit. A vote's request
answers only once the batch holding it has committed; if a batch fails, its votes are written
one by one, so one bad vote fails alone.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Boolean,
    Engine,
    Integer,
    String,
    TextualSelect,
    bindparam,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.comparisons import recording
from app.comparisons.recording import Recorded, Target
from app.comparisons.voting import (
    ATTEMPTS,
    BACKOFF_SECONDS,
    Verdict,
    commit_once,
    retryable,
    write_lock,
)
from app.db import UTCDateTime, utcnow

# Rows per statement, well under SQLite's 32,766 bound parameters.
MAX_ROWS = 500


@dataclass
class _Pending:
    target: Target
    verdict: Verdict
    done: asyncio.Future[Recorded]


_queues: weakref.WeakKeyDictionary[Engine, list[_Pending]] = weakref.WeakKeyDictionary()


async def record(
    session: AsyncSession, read: Callable[[AsyncConnection], Awaitable[tuple[Target, Verdict]]]
) -> Recorded:
    """read() the target and check the verdict, then store it and commit; retried on a clash.

    PostgreSQL: one transaction on the session (concurrent upserts of a row wait on its lock).
    SQLite: the read runs on a connection of its own, given back before queueing (a rollback
    of the session would expire the caller's loaded objects); then the vote joins the batch.
    """
    lock = write_lock(session)
    for number in range(ATTEMPTS):
        try:
            if lock is None:
                conn = await session.connection()
                target, verdict = await read(conn)
                return await _commit(session, conn, target, verdict)
            engine = _engine(session)
            async with engine.connect() as conn:
                target, verdict = await read(conn)
            return await submit(engine, lock, target, verdict)
        except (IntegrityError, OperationalError) as exc:
            if not retryable(exc) or number == ATTEMPTS - 1:
                raise
            await asyncio.sleep(random.uniform(0, BACKOFF_SECONDS * 2**number))
    raise AssertionError("unreachable")


def _engine(session: AsyncSession) -> AsyncEngine:
    bind = session.bind
    if isinstance(bind, AsyncConnection):
        return bind.engine
    assert isinstance(bind, AsyncEngine)
    return bind


async def _commit(
    session: AsyncSession, conn: AsyncConnection, target: Target, verdict: Verdict
) -> Recorded:
    return await commit_once(session, lambda: recording.store(conn, target, verdict))


async def submit(
    engine: AsyncEngine, lock: asyncio.Lock, target: Target, verdict: Verdict
) -> Recorded:
    """Queue a vote and return it once committed (by this request or one queued before it)."""
    queue = _queues.setdefault(engine.sync_engine, [])
    done: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
    queue.append(_Pending(target, verdict, done))
    async with lock:
        if not done.done():
            batch = queue[:]
            queue.clear()
            await _write(engine, batch, queue)
    return done.result()


async def _write(engine: AsyncEngine, batch: list[_Pending], queue: list[_Pending]) -> None:
    """Write a batch and settle its futures; whatever is left unsettled goes back in line."""
    try:
        try:
            async with engine.connect() as conn:  # closing without a commit rolls back
                stored = await _store_all(conn, batch)
                await conn.commit()
        except Exception:
            if len(batch) == 1:
                raise
            # One by one: each vote then succeeds or fails on its own.
            for item in batch:
                await _write(engine, [item], queue)
            return
        for item, recorded in zip(batch, stored, strict=True):
            item.done.set_result(recorded)
    except Exception as exc:
        batch[0].done.set_exception(exc)
    finally:
        # Cancelled mid-write (the holder's client went away): the others wait for the next.
        queue[:0] = [item for item in batch if not item.done.done()]


async def _store_all(conn: AsyncConnection, batch: list[_Pending]) -> list[Recorded]:
    """Every vote of the batch in this transaction; a rater's later vote on a turn wins."""
    results: dict[int, Recorded] = {}
    rounds: list[list[int]] = []
    seen: dict[tuple[int, str], int] = {}
    for index, item in enumerate(batch):
        key = (item.target.turn_id, item.verdict.rater)
        # The same rater on the same turn twice: the later one in a later statement.
        turn = seen.get(key, -1) + 1
        seen[key] = turn
        if turn == len(rounds):
            rounds.append([])
        rounds[turn].append(index)
    judged: set[tuple[str, str]] = set()
    for indexes in rounds:
        for start in range(0, len(indexes), MAX_ROWS):
            chunk = [batch[i] for i in indexes[start : start + MAX_ROWS]]
            stored = await _store_round(conn, chunk, judged)
            results.update(zip(indexes[start : start + MAX_ROWS], stored, strict=True))
    return [results[i] for i in range(len(batch))]


async def _store_round(
    conn: AsyncConnection, items: Sequence[_Pending], judged: set[tuple[str, str]]
) -> list[Recorded]:
    """Votes of distinct (turn, rater): one upsert for the judgements, one for the entries."""
    now = utcnow()
    params: dict[str, object] = {"now": now}
    for n, item in enumerate(items):
        target, verdict = item.target, item.verdict
        blind = target.blind and not await _judged_before(conn, target, verdict, judged)
        params |= {
            f"turn_id_{n}": target.turn_id,
            f"rater_{n}": verdict.rater,
            f"blind_{n}": blind,
            f"all_bad_{n}": all(rank is None for rank in verdict.ranks.values()),
            f"comment_{n}": verdict.comment,
        }
    rows = (await conn.execute(_upsert_judgements(len(items)), params)).all()
    by_key = {
        (turn_id, rater): (jid, blind, created) for jid, turn_id, rater, blind, created in rows
    }
    recorded = []
    for item in items:
        judgement_id, blind, created_at = by_key[(item.target.turn_id, item.verdict.rater)]
        one = recording.as_recorded(item.target, item.verdict, judgement_id, blind, created_at, now)
        recorded.append(one)
    await conn.execute(
        recording.UPSERT_ENTRY,
        [recording.entry_params(r.id, e) for r in recorded for e in r.entries],
    )
    return recorded


async def _judged_before(
    conn: AsyncConnection, target: Target, verdict: Verdict, judged: set[tuple[str, str]]
) -> bool:
    """Whether the rater judged this conversation before (earlier in this batch included)."""
    key = (target.conversation_id, verdict.rater)
    before = key in judged or await recording.judged_before(conn, target, verdict)
    judged.add(key)
    return before


@lru_cache(maxsize=64)
def _upsert_judgements(rows: int) -> TextualSelect:
    """INSERT ... ON CONFLICT DO UPDATE of `rows` judgements (cached per row count)."""
    values = ", ".join(
        f"(:turn_id_{n}, :rater_{n}, :blind_{n}, :all_bad_{n}, :comment_{n}, :now, :now)"
        for n in range(rows)
    )
    types: list[BindParameter[Any]] = [bindparam("now", type_=UTCDateTime())]
    for n in range(rows):
        types += [
            bindparam(f"blind_{n}", type_=Boolean()),
            bindparam(f"all_bad_{n}", type_=Boolean()),
        ]
    return (
        text(
            "INSERT INTO judgements"  # noqa: S608 (placeholders and constants only)
            " (turn_id, rater, blind, all_bad, comment, created_at, updated_at)"
            f" VALUES {values}{recording.ON_JUDGEMENT_CONFLICT}"
            " RETURNING id, turn_id, rater, blind, created_at"
        )
        .bindparams(*types)
        .columns(
            id=Integer(),
            turn_id=Integer(),
            rater=String(),
            blind=Boolean(),
            created_at=UTCDateTime(),
        )
    )

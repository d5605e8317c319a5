"""Recording a judgement: a few narrow queries and one short transaction, retried on a race.

A vote must not load the whole conversation (every answer's text and token JSON): it needs
only the turn, its answers' ids and statuses, the participants and the rater's earlier
judgement. The same rater judging the same turn from two requests at once is an upsert: both
succeed and the one that commits last wins; a unique-constraint clash or a busy database makes
the loser start again in a fresh transaction, where it finds the winner's row and updates it.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.comparisons.models import Conversation, Judgement, JudgementEntry, Participant, Turn
from app.db import utcnow
from app.errors import Conflict, NotFound
from app.generation.records import Generation, GenerationStatus

T = TypeVar("T")

ATTEMPTS = 8
# The first retry comes soon; later ones spread out so that a crowd of losers does not collide
# again at once (full jitter).
BACKOFF_SECONDS = 0.005


@dataclass(frozen=True)
class Verdict:
    """A judgement's content, validated against the turn's columns by the caller."""

    rater: str
    ranks: dict[str, int | None]
    scores: dict[str, int]
    comment: str | None


@dataclass(frozen=True)
class VoteTarget:
    """What a vote needs to know about its turn."""

    conversation: Conversation
    turn_id: int
    turn_number: int
    answers: dict[str, int]


def retryable(exc: Exception) -> bool:
    """A clash with a concurrent writer, which a fresh transaction resolves."""
    if isinstance(exc, IntegrityError):
        return True
    message = str(exc).lower()
    # SQLite: "database is locked" (busy), PostgreSQL: serialization failures and deadlocks.
    return isinstance(exc, OperationalError) and any(
        words in message for words in ("locked", "busy", "deadlock", "serializ")
    )


# SQLite lets one writer in at a time. With many votes at once, each request held a pooled
# connection while SQLite's busy handler made it sleep, and under load the pool (15
# connections) ran dry: requests failed after 30 s waiting for a connection. In one process,
# votes on SQLite queue on an asyncio lock (one per event loop) before they take a connection.
_sqlite_vote_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def write_lock(session: AsyncSession) -> asyncio.Lock | None:
    """SQLite's in-process queue for vote writers (None on PostgreSQL, where rows lock)."""
    bind = session.bind
    if bind is None or bind.dialect.name != "sqlite":
        return None
    return _sqlite_vote_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())


async def commit_once(session: AsyncSession, attempt: Callable[[], Awaitable[T]]) -> T:
    """One transaction: attempt() then commit; rolled back (connection freed) on failure."""
    try:
        result = await attempt()
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    return result


async def with_retries(session: AsyncSession, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run attempt() and commit; on a retryable clash run it again in a fresh transaction."""
    lock = write_lock(session)
    for number in range(ATTEMPTS):
        try:
            if lock is None:
                return await commit_once(session, attempt)
            async with lock:
                return await commit_once(session, attempt)
        except (IntegrityError, OperationalError) as exc:
            if not retryable(exc) or number == ATTEMPTS - 1:
                raise
            await asyncio.sleep(random.uniform(0, BACKOFF_SECONDS * 2**number))
    raise AssertionError("unreachable")


async def load_target(
    session: AsyncSession, conversation_id: str, number: int | None
) -> VoteTarget:
    """The turn a vote is for (default: the latest), checked open and fully answered."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id!r}")
    latest = await session.execute(
        select(Turn.id, Turn.number)
        .where(Turn.conversation_id == conversation_id)
        .order_by(Turn.number.desc())
        .limit(1)
    )
    latest_row = latest.first()
    if latest_row is None:
        raise NotFound(f"conversation {conversation_id} has no turn")
    turn_id, latest_number = latest_row
    number = number or latest_number
    if number != latest_number:
        if 1 <= number < latest_number:
            raise Conflict(f"turn {number} is closed: votes can change only until the next turn")
        raise NotFound(f"conversation {conversation_id} has no turn {number}")
    rows = await session.execute(
        select(Generation.slot, Generation.id, Generation.status).where(
            Generation.turn_id == turn_id, Generation.is_current, Generation.slot != "p"
        )
    )
    answers: dict[str, int] = {}
    for slot, generation_id, status in rows.tuples():
        # A vote on an answer still being written (or whose owner may still write it) would
        # judge text nobody has seen in full.
        if not GenerationStatus(status).finished:
            raise Conflict("every answer must be complete before voting")
        answers[slot] = generation_id
    missing = [slot for slot in conversation.slots if slot not in answers]
    if missing:
        raise Conflict(f"turn {number} has no answer in column {missing[0]}")
    return VoteTarget(conversation, turn_id, number, answers)


async def upsert(session: AsyncSession, target: VoteTarget, verdict: Verdict) -> Judgement:
    """Insert or replace the rater's judgement of the turn (in the caller's transaction)."""
    conversation = target.conversation
    judgement = await session.scalar(
        select(Judgement)
        .where(Judgement.turn_id == target.turn_id, Judgement.rater == verdict.rater)
        # PostgreSQL: a concurrent judge of the same row waits here, then sees the winner.
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    now = utcnow()
    if judgement is None:
        judged_before = conversation.blind and bool(
            await session.scalar(
                select(
                    exists()
                    .where(Judgement.rater == verdict.rater)
                    .where(Judgement.turn_id == Turn.id)
                    .where(Turn.conversation_id == conversation.id)
                )
            )
        )
        # Blind only if this rater had not yet seen the names (they show after judging).
        judgement = Judgement(
            turn_id=target.turn_id,
            rater=verdict.rater,
            blind=conversation.blind and not judged_before,
            created_at=now,
        )
        session.add(judgement)
    else:
        # Names show right after a rater's first judgement: every change after it is made
        # knowing them, so it no longer counts as blind.
        judgement.blind = False
    judgement.all_bad = all(rank is None for rank in verdict.ranks.values())
    judgement.comment = verdict.comment
    judgement.updated_at = now
    await session.flush()
    await session.execute(delete(JudgementEntry).where(JudgementEntry.judgement_id == judgement.id))
    participants: list[Participant] = conversation.participants
    await session.execute(
        insert(JudgementEntry),
        [
            {
                "judgement_id": judgement.id,
                "slot": p.slot,
                "generation_id": target.answers[p.slot],
                "position": p.position,
                "rank": verdict.ranks[p.slot],
                "score": verdict.scores.get(p.slot),
            }
            for p in participants
        ],
    )
    # The entries as stored, for the answer (Core writes bypass the relationship).
    await session.refresh(judgement, ["entries"])
    return judgement

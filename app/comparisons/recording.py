"""A comparison vote in a few Core statements: one lean read, two upserts, the commit.

The ORM path (voting.load_target / voting.upsert, still used by annotation queues) built
objects, flushed, deleted and re-inserted the entries and refreshed them: about 10 ms of CPU
per vote. Here the turn's current answers and the participants come from one query, the
judgement is an INSERT ... ON CONFLICT DO UPDATE on (turn_id, rater) (SQLite and PostgreSQL
alike) that returns what the answer needs, and its entries the same on (judgement_id, slot).
Two raters' upserts of the same row serialize in the database, so the later commit wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Boolean, Integer, and_, bindparam, exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.comparisons.models import Conversation, Judgement, Participant, Turn
from app.comparisons.voting import (
    Verdict,
)
from app.db import UTCDateTime, utcnow
from app.errors import Conflict, NotFound
from app.generation.records import Generation, GenerationStatus

_latest_number = (
    select(func.max(Turn.number))
    .where(Turn.conversation_id == Conversation.id)
    .correlate(Conversation)
    .scalar_subquery()
)
# The conversation, its latest turn, each participant and that participant's current answer.
_TARGET = (
    select(
        Conversation.blind,
        Conversation.run_item_id,
        Turn.id,
        Turn.number,
        Participant.slot,
        Participant.position,
        Generation.id,
        Generation.status,
    )
    .select_from(Conversation)
    .outerjoin(Turn, and_(Turn.conversation_id == Conversation.id, Turn.number == _latest_number))
    .outerjoin(Participant, Participant.conversation_id == Conversation.id)
    .outerjoin(
        Generation,
        and_(
            Generation.turn_id == Turn.id,
            Generation.slot == Participant.slot,
            Generation.is_current,
        ),
    )
    .where(Conversation.id == bindparam("conversation_id"))
    .order_by(Participant.position)
)

_FINISHED = frozenset(s.value for s in GenerationStatus if s.finished)


@dataclass(frozen=True)
class Target:
    """What a vote needs to know about its turn (no ORM objects)."""

    conversation_id: str
    blind: bool
    turn_id: int
    turn_number: int
    answers: dict[str, int]
    positions: dict[str, int]

    @property
    def slots(self) -> list[str]:
        """The slots in column order."""
        return list(self.positions)


@dataclass(frozen=True)
class EntryRecord:
    """One answer's part of a stored judgement."""

    slot: str
    generation_id: int
    position: int
    rank: int | None
    score: int | None


@dataclass(frozen=True)
class Recorded:
    """A judgement as stored, with the same fields the API shows of an ORM Judgement."""

    id: int
    turn_id: int
    turn_number: int
    rater: str
    all_bad: bool
    comment: str | None
    blind: bool
    created_at: datetime
    updated_at: datetime
    entries: list[EntryRecord] = field(default_factory=list)

    def entry(self, slot: str) -> EntryRecord | None:
        """What the judgement says of one slot's answer."""
        return next((e for e in self.entries if e.slot == slot), None)

    @property
    def generation_ids(self) -> dict[str, int]:
        """The exact answers judged, by slot."""
        return {e.slot: e.generation_id for e in self.entries}


async def load(conn: AsyncConnection, conversation_id: str, number: int | None) -> Target:
    """The turn a vote is for (default: the latest), checked open and fully answered."""
    rows = (await conn.execute(_TARGET, {"conversation_id": conversation_id})).all()
    if not rows:
        raise NotFound(f"no conversation {conversation_id!r}")
    blind, run_item_id, turn_id, latest_number = rows[0][:4]
    if run_item_id is not None:
        # Judged here, an item would pass its queue: no lease, no overlap, and its blind
        # names would show before the rater judges it there.
        raise Conflict("this is an item of a run's rating queue: judge it in the queue")
    if turn_id is None:
        raise NotFound(f"conversation {conversation_id} has no turn")
    number = number or latest_number
    if number != latest_number:
        if 1 <= number < latest_number:
            raise Conflict(f"turn {number} is closed: votes can change only until the next turn")
        raise NotFound(f"conversation {conversation_id} has no turn {number}")
    answers: dict[str, int] = {}
    positions: dict[str, int] = {}
    missing: list[str] = []
    for *_, slot, position, generation_id, status in rows:
        if slot is None:
            continue
        positions[slot] = position
        if generation_id is None:
            missing.append(slot)
            continue
        # A vote on an answer still being written (or whose owner may still write it) would
        # judge text nobody has seen in full.
        if status not in _FINISHED:
            raise Conflict("every answer must be complete before voting")
        answers[slot] = generation_id
    if missing:
        raise Conflict(f"turn {number} has no answer in column {missing[0]}")
    if not positions:
        raise Conflict("this conversation has no answers to judge")
    return Target(conversation_id, bool(blind), turn_id, number, answers, positions)


# The upserts as text: SQLAlchemy's dialect INSERT ... ON CONFLICT constructs are not cached
# (inherit_cache = False), so building and compiling them cost more than the rest of the vote.
# The SQL is the same on SQLite (3.24+) and PostgreSQL; the types convert the timestamps.
ON_JUDGEMENT_CONFLICT = (
    " ON CONFLICT (turn_id, rater) DO UPDATE SET"
    # Names show right after a rater's first judgement: every change after it is made
    # knowing them, so it no longer counts as blind.
    " blind = false, all_bad = excluded.all_bad, comment = excluded.comment,"
    " updated_at = excluded.updated_at"
)
_UPSERT_JUDGEMENT = (
    text(
        "INSERT INTO judgements (turn_id, rater, blind, all_bad, comment, created_at, updated_at)"  # noqa: S608 (constants only)
        " VALUES (:turn_id, :rater, :blind, :all_bad, :comment, :now, :now)"
        f"{ON_JUDGEMENT_CONFLICT}"
        " RETURNING id, blind, created_at"
    )
    .bindparams(
        bindparam("blind", type_=Boolean()),
        bindparam("all_bad", type_=Boolean()),
        bindparam("now", type_=UTCDateTime()),
    )
    .columns(id=Integer(), blind=Boolean(), created_at=UTCDateTime())
)
# Every participant has an entry, so upserting them all replaces the earlier ones.
UPSERT_ENTRY = text(
    'INSERT INTO judgement_entries (judgement_id, slot, generation_id, "position", "rank", score)'
    " VALUES (:judgement_id, :slot, :generation_id, :position, :rank, :score)"
    " ON CONFLICT (judgement_id, slot) DO UPDATE SET generation_id = excluded.generation_id,"
    ' "position" = excluded."position", "rank" = excluded."rank", score = excluded.score'
)
_JUDGED_BEFORE = select(
    exists()
    .where(Judgement.rater == bindparam("rater"))
    .where(Judgement.turn_id == Turn.id)
    .where(Turn.conversation_id == bindparam("conversation_id"))
)


async def judged_before(conn: AsyncConnection, target: Target, verdict: Verdict) -> bool:
    """Whether the rater already judged a turn of this conversation (so has seen the names)."""
    params = {"rater": verdict.rater, "conversation_id": target.conversation_id}
    return bool(await conn.scalar(_JUDGED_BEFORE, params))


def as_recorded(
    target: Target,
    verdict: Verdict,
    judgement_id: int,
    blind: bool,
    created_at: datetime,
    now: datetime,
) -> Recorded:
    """The stored judgement, from the vote and what the upsert returned."""
    return Recorded(
        id=judgement_id,
        turn_id=target.turn_id,
        turn_number=target.turn_number,
        rater=verdict.rater,
        all_bad=all(rank is None for rank in verdict.ranks.values()),
        comment=verdict.comment,
        blind=bool(blind),
        created_at=created_at,
        updated_at=now,
        entries=[
            EntryRecord(
                slot,
                target.answers[slot],
                position,
                verdict.ranks[slot],
                verdict.scores.get(slot),
            )
            for slot, position in sorted(target.positions.items())
        ],
    )


def entry_params(judgement_id: int, entry: EntryRecord) -> dict[str, object]:
    """One entry's row for UPSERT_ENTRY."""
    return {
        "judgement_id": judgement_id,
        "slot": entry.slot,
        "generation_id": entry.generation_id,
        "position": entry.position,
        "rank": entry.rank,
        "score": entry.score,
    }


async def store(conn: AsyncConnection, target: Target, verdict: Verdict) -> Recorded:
    """Insert or replace the rater's judgement of the turn (in the caller's transaction)."""
    before = target.blind and await judged_before(conn, target, verdict)
    now = utcnow()
    stored = await conn.execute(
        _UPSERT_JUDGEMENT,
        {
            "turn_id": target.turn_id,
            "rater": verdict.rater,
            # Blind only if this rater had not yet seen the names (they show after judging).
            "blind": target.blind and not before,
            "all_bad": all(rank is None for rank in verdict.ranks.values()),
            "comment": verdict.comment,
            "now": now,
        },
    )
    judgement_id, blind, created_at = stored.one()
    recorded = as_recorded(target, verdict, judgement_id, blind, created_at, now)
    await conn.execute(UPSERT_ENTRY, [entry_params(judgement_id, e) for e in recorded.entries])
    return recorded

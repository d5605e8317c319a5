"""Stored answer scores: read them for a run's answers, write new or outdated ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.forgetting.models import MAX_DETAIL_CHARS, AnswerScore
from app.forgetting.scorers import Score

# Ids per IN list, well under SQLite's and PostgreSQL's limits on bound parameters.
ID_BATCH = 1000


def _batches(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), ID_BATCH):
        yield ids[start : start + ID_BATCH]


async def stored(session: AsyncSession, generation_ids: Sequence[int]) -> dict[int, AnswerScore]:
    """The stored scores of these generations, by generation id."""
    found: dict[int, AnswerScore] = {}
    for batch in _batches(generation_ids):
        rows = await session.scalars(
            select(AnswerScore).where(AnswerScore.generation_id.in_(batch))
        )
        found.update({row.generation_id: row for row in rows})
    return found


async def save(session: AsyncSession, scores: dict[int, Score], version: int) -> None:
    """Insert or replace the scores of these generations (two requests may score at once)."""
    if not scores:
        return
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    rows = [
        {
            "generation_id": gid,
            "correct": s.correct,
            "scorer_version": version,
            "detail": s.detail[:MAX_DETAIL_CHARS],
            "scored_at": now,
        }
        for gid, s in scores.items()
    ]
    for start in range(0, len(rows), ID_BATCH):
        statement = insert(AnswerScore).values(rows[start : start + ID_BATCH])
        statement = statement.on_conflict_do_update(
            index_elements=[AnswerScore.generation_id],
            set_={
                "correct": statement.excluded.correct,
                "scorer_version": statement.excluded.scorer_version,
                "detail": statement.excluded.detail,
                "scored_at": statement.excluded.scored_at,
            },
        )
        await session.execute(statement)

"""The judgements the statistics read, one row each, with the gap since the rater's previous one."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.comparisons.models import Judgement, JudgementEntry
from app.db import UTCDateTime
from app.leaderboard.filters import Filters
from app.raters.verdicts import BOTH_BAD, has_tie, verdict

# An item: the turn and the exact answers judged (slot, generation id). Two raters agree or
# disagree only about the same answers: a regenerated column makes a new item.
Item = tuple[int, tuple[tuple[str, int], ...]]


@dataclass(frozen=True)
class Judged:
    """One judgement as the statistics see it."""

    rater: str
    item: Item
    verdict: str
    tie: bool
    all_bad: bool
    # Seconds since the same rater's previous judgement (of any kind, filtered out or not);
    # None for their first.
    gap: float | None


async def judged(session: AsyncSession, filters: Filters) -> list[Judged]:
    """Every judgement under the filters, in id order."""
    # The previous judgement is looked up over all of the rater's judgements (a window in a
    # subquery), so a filter never merges two gaps into one.
    previous = select(
        Judgement.id.label("id"),
        func.lag(Judgement.created_at, type_=UTCDateTime())
        .over(partition_by=Judgement.rater, order_by=(Judgement.created_at, Judgement.id))
        .label("previous"),
    ).subquery()
    statement = (
        select(
            Judgement.id,
            Judgement.turn_id,
            Judgement.rater,
            Judgement.all_bad,
            Judgement.created_at,
            previous.c.previous,
            JudgementEntry.slot,
            JudgementEntry.generation_id,
            JudgementEntry.rank,
        )
        .join(previous, previous.c.id == Judgement.id)
        .join(JudgementEntry, JudgementEntry.judgement_id == Judgement.id)
        .order_by(Judgement.id, JudgementEntry.slot)
    )
    rows = (await session.execute(filters.apply(statement))).tuples()
    result = []
    for _, group in groupby(rows, key=lambda row: row[0]):
        entries = list(group)
        _, turn_id, rater, all_bad, created_at, before, *_ = entries[0]
        ranks = {slot: rank for *_, slot, _, rank in entries}
        category = verdict(ranks, all_bad)
        result.append(
            Judged(
                rater=rater,
                item=(turn_id, tuple((slot, generation) for *_, slot, generation, _ in entries)),
                verdict=category,
                tie=has_tie(ranks, all_bad),
                all_bad=category == BOTH_BAD,
                gap=None if before is None else (created_at - before).total_seconds(),
            )
        )
    return result

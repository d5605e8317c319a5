"""Rated pairs counted in the database: one row per (model, model, outcome) with its count.

A judgement of n answers gives n(n-1)/2 pairs (as the ratings CSV); the counting happens in
SQL, so memory does not grow with the number of votes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.comparisons.models import Judgement, JudgementEntry, Participant, Turn, Winner
from app.leaderboard.filters import Filters


class BothBad(StrEnum):
    """What a both-bad pair counts as: a tie (default), or nothing."""

    TIE = "tie"
    EXCLUDE = "exclude"


@dataclass(frozen=True)
class PairCount:
    """How many pairs of model_a against model_b ended with this outcome."""

    model_a: str
    model_b: str
    outcome: Winner
    count: int


async def count_pairs(session: AsyncSession, filters: Filters) -> list[PairCount]:
    """Every rated pair under the filters, grouped by the two models and the outcome."""
    entry_a, entry_b = aliased(JudgementEntry), aliased(JudgementEntry)
    part_a, part_b = aliased(Participant), aliased(Participant)
    outcome = case(
        (
            Judgement.all_bad.is_(True) | entry_a.rank.is_(None) | entry_b.rank.is_(None),
            Winner.BOTH_BAD.value,
        ),
        (entry_a.rank == entry_b.rank, Winner.TIE.value),
        (entry_a.rank < entry_b.rank, Winner.A.value),
        else_=Winner.B.value,
    ).label("outcome")
    statement = (
        select(part_a.model_name, part_b.model_name, outcome, func.count())
        .select_from(Judgement)
        .join(Turn, Judgement.turn_id == Turn.id)
        .join(entry_a, entry_a.judgement_id == Judgement.id)
        .join(entry_b, and_(entry_b.judgement_id == Judgement.id, entry_a.slot < entry_b.slot))
        .join(
            part_a,
            and_(part_a.conversation_id == Turn.conversation_id, part_a.slot == entry_a.slot),
        )
        .join(
            part_b,
            and_(part_b.conversation_id == Turn.conversation_id, part_b.slot == entry_b.slot),
        )
        .group_by(part_a.model_name, part_b.model_name, outcome)
        .order_by(part_a.model_name, part_b.model_name, outcome)
    )
    rows = await session.execute(filters.apply(statement))
    return [
        PairCount(a, b, Winner(result), int(count))
        for a, b, result, count in rows.tuples()
        if a != b
    ]

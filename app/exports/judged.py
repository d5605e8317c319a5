"""The statement every judgement export starts from: one row per judged answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, select

from app.comparisons.models import Conversation, Judgement, JudgementEntry, Participant, Turn
from app.generation.records import Generation

# Rows per database round trip: exports stream, so memory stays flat.
CHUNK_ROWS = 1000


def judged_answers(*columns: Any) -> Select[Any]:
    """These columns for every judged answer (a judgement entry with its judgement, turn,
    conversation, participant and generation), in conversation order, one judgement's
    answers together and in slot order."""
    return (
        select(*columns)
        .select_from(Judgement)
        .join(Turn, Judgement.turn_id == Turn.id)
        .join(Conversation, Turn.conversation_id == Conversation.id)
        .join(JudgementEntry, JudgementEntry.judgement_id == Judgement.id)
        .join(
            Participant,
            and_(
                Participant.conversation_id == Conversation.id,
                Participant.slot == JudgementEntry.slot,
            ),
        )
        .join(Generation, Generation.id == JudgementEntry.generation_id)
        .order_by(
            Conversation.created_at, Conversation.id, Turn.number, Judgement.id, JudgementEntry.slot
        )
        .execution_options(yield_per=CHUNK_ROWS)
    )

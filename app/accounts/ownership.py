"""Whose conversation a path names: by conversation_id, turn_id or generation_id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.comparisons.models import Conversation, Turn
from app.generation.records import Generation

# Returned when the path names no row: the route itself answers 404 then.
MISSING = object()


async def owner_of(session: AsyncSession, params: Mapping[str, Any]) -> object:
    """The owner's account id (None: nobody's, e.g. made in local mode or by a run), or MISSING."""
    if "conversation_id" in params:
        query = select(Conversation.owner_id).where(Conversation.id == params["conversation_id"])
    elif "turn_id" in params:
        query = (
            select(Conversation.owner_id)
            .join(Turn, Turn.conversation_id == Conversation.id)
            .where(Turn.id == int(params["turn_id"]))
        )
    elif "generation_id" in params:
        query = (
            select(Conversation.owner_id)
            .join(Turn, Turn.conversation_id == Conversation.id)
            .join(Generation, Generation.turn_id == Turn.id)
            .where(Generation.id == int(params["generation_id"]))
        )
    else:
        raise LookupError("an OWNER rule needs a conversation_id, turn_id or generation_id")
    row = (await session.execute(query)).one_or_none()
    if row is None:
        generation_id = params.get("generation_id")
        if generation_id is not None and await session.scalar(
            select(Generation.id).where(Generation.id == int(generation_id))
        ):
            return None  # a batch run's answer: in no conversation, so nobody's
        return MISSING
    return row[0]

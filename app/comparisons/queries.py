"""How comparisons are read: one loader per shape, with the eager loads its readers need."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.comparisons.models import Conversation, Judgement, Turn
from app.errors import NotFound

# Real ids are never above this (PostgreSQL's integer); larger ones cannot exist.
MAX_ROW_ID = 2**31 - 1


async def load_conversation(session: AsyncSession, conversation_id: str) -> Conversation:
    """A conversation with its participants, turns, generations and judgements, fresh."""
    conversation = await session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .options(
            selectinload(Conversation.turns).selectinload(Turn.generations),
            selectinload(Conversation.turns)
            .selectinload(Turn.judgements)
            .selectinload(Judgement.entries),
        )
        .execution_options(populate_existing=True)
    )
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id!r}")
    return conversation


async def load_turn(session: AsyncSession, turn_id: int) -> Turn:
    """A turn with its generations and judgements."""
    turn = None
    if 1 <= turn_id <= MAX_ROW_ID:
        turn = await session.scalar(
            select(Turn)
            .where(Turn.id == turn_id)
            .options(
                selectinload(Turn.generations),
                selectinload(Turn.judgements).selectinload(Judgement.entries),
            )
            .execution_options(populate_existing=True)
        )
    if turn is None:
        raise NotFound(f"no turn {turn_id}")
    return turn


async def conversation_id_of_turn(session: AsyncSession, turn_id: int) -> str:
    """Which conversation a turn belongs to."""
    conversation_id = None
    if 1 <= turn_id <= MAX_ROW_ID:
        conversation_id = await session.scalar(
            select(Turn.conversation_id).where(Turn.id == turn_id)
        )
    if conversation_id is None:
        raise NotFound(f"no turn {turn_id}")
    return conversation_id


async def turn_number(session: AsyncSession, turn_id: int) -> int:
    """A turn's number in its conversation."""
    number = None
    if 1 <= turn_id <= MAX_ROW_ID:
        number = await session.scalar(select(Turn.number).where(Turn.id == turn_id))
    if number is None:
        raise NotFound(f"no turn {turn_id}")
    return number


async def recent_conversations(
    session: AsyncSession, limit: int, owner_id: int | None = None
) -> list[Conversation]:
    """The newest conversations first (participants loaded, turns not); only one owner's
    when `owner_id` is given."""
    query = select(Conversation)
    if owner_id is not None:
        query = query.where(Conversation.owner_id == owner_id)
    result = await session.scalars(query.order_by(Conversation.created_at.desc()).limit(limit))
    return list(result)

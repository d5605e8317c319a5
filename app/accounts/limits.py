"""Per-account limits, counted from stored rows so they hold across restarts and processes."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from fastapi import HTTPException, status
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.comparisons.models import Conversation, Turn
from app.config import Settings
from app.generation.records import Generation

WINDOW = timedelta(minutes=1)


def too_many(message: str, retry_after: float) -> HTTPException:
    """A 429 with a Retry-After (whole seconds, at least 1)."""
    seconds = max(1, math.ceil(retry_after))
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS, message, headers={"Retry-After": str(seconds)}
    )


async def check_limits(
    session: AsyncSession, account_id: int, settings: Settings, now: datetime
) -> None:
    """429 when the account started too many comparisons this minute or used up today's tokens."""
    if settings.comparisons_per_minute:
        count, oldest = (
            await session.execute(
                select(func.count(Turn.id), func.min(Turn.created_at))
                .join(Conversation, Conversation.id == Turn.conversation_id)
                .where(Conversation.owner_id == account_id, Turn.created_at > now - WINDOW)
            )
        ).one()
        if count >= settings.comparisons_per_minute:
            wait = (oldest + WINDOW - now).total_seconds() if oldest else WINDOW.total_seconds()
            raise too_many(
                f"too many comparisons: at most {settings.comparisons_per_minute} a minute "
                f"per account; try again in {max(1, math.ceil(wait))} s",
                wait,
            )
    if settings.tokens_per_day:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        used = (
            await session.execute(
                select(func.coalesce(func.sum(Generation.completion_tokens), 0))
                .join(Turn, Turn.id == Generation.turn_id)
                .join(Conversation, Conversation.id == Turn.conversation_id)
                .where(Conversation.owner_id == account_id, Generation.created_at >= midnight)
            )
        ).scalar_one() or 0
        if used >= settings.tokens_per_day:
            wait = (midnight + timedelta(days=1) - now).total_seconds()
            raise too_many(
                f"this account generated its {settings.tokens_per_day} tokens for today "
                f"({used} used); the count starts again at 00:00 UTC",
                wait,
            )

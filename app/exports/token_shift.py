"""The per-token token-shift export: one JSON line per analysed token, streamed in chunks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.comparisons.models import Conversation, Turn
from app.generation.records import Generation
from app.lens.models import TokenShiftAnalysis
from app.lens.shift import ShiftAnalysis

FIELDS = [
    "conversation_id", "turn", "generation_id", "side", "model", "base_model", "position",
    "token", "token_id", "chat_logprob", "base_rank", "base_logprob", "base_top_token", "shift",
]  # fmt: skip
# Analyses per database round trip; each holds one answer's tokens.
CHUNK_ANALYSES = 100


def _statement() -> Any:
    """Every stored analysis with where its answer sits, as plain columns, in conversation order."""
    return (
        select(
            Turn.conversation_id,
            Turn.number,
            Generation.id.label("generation_id"),
            Generation.slot.label("side"),
            Generation.model_name,
            TokenShiftAnalysis.base_model,
            TokenShiftAnalysis.analysis,
        )
        .join(Generation, TokenShiftAnalysis.generation_id == Generation.id)
        .join(Turn, Generation.turn_id == Turn.id)
        .join(Conversation, Turn.conversation_id == Conversation.id)
        .order_by(Conversation.created_at, Conversation.id, Turn.number, Generation.id)
        .execution_options(yield_per=CHUNK_ANALYSES)
    )


def _lines(row: Row[Any]) -> Iterable[str]:
    """One JSON line per token of one stored analysis."""
    analysis = ShiftAnalysis.from_json(row.analysis)
    for token in analysis.tokens:
        record = {
            "conversation_id": row.conversation_id,
            "turn": row.number,
            "generation_id": row.generation_id,
            "side": row.side,
            "model": row.model_name,
            "base_model": row.base_model,
            "position": token.position,
            "token": token.token,
            "token_id": token.token_id,
            "chat_logprob": token.chat_logprob,
            "base_rank": token.rank,
            "base_logprob": token.logprob,
            "base_top_token": token.top_token,
            "shift": token.shift.value,
        }
        yield json.dumps(record, ensure_ascii=False) + "\n"


async def stream_token_shift_jsonl(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[str]:
    """Yield the JSONL a chunk of analyses at a time; the session lives as long as the download."""
    async with sessions() as session:
        result = await session.stream(_statement())
        async for partition in result.partitions():
            chunk = "".join(line for row in partition for line in _lines(row))
            if chunk:
                yield chunk

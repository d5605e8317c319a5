"""The judgements JSONL: one record per judgement with its full ranking, streamed in chunks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.comparisons.judging import ranking_of
from app.comparisons.models import Conversation, Judgement, JudgementEntry, Participant, Turn
from app.exports.judged import judged_answers
from app.generation.records import Generation


def _statement() -> Any:
    """Every judged answer, grouped by judgement, in conversation order."""
    return judged_answers(
        Judgement.id.label("judgement_id"),
        Judgement.rater,
        Judgement.all_bad,
        Judgement.comment,
        Judgement.blind,
        Judgement.created_at,
        Judgement.updated_at,
        Conversation.id.label("conversation_id"),
        Conversation.system_prompt,
        Conversation.base_format,
        Turn.number,
        Turn.prompt,
        Turn.params,
        JudgementEntry.slot,
        JudgementEntry.position,
        JudgementEntry.rank,
        JudgementEntry.score,
        JudgementEntry.generation_id,
        Participant.model_name,
        Participant.model_kind,
        Generation.served_model,
        Generation.model_revision,
        Generation.prompt_format,
        Generation.prompt_text,
        Generation.messages,
        Generation.text,
        Generation.finish_reason,
        Generation.completion_tokens,
        Generation.seed,
    )


def _record(rows: list[Row[Any]]) -> str:
    """One judgement as a JSON line."""
    first = rows[0]
    ranks = {row.slot: row.rank for row in rows}
    record = {
        "judgement_id": first.judgement_id,
        "conversation_id": first.conversation_id,
        "turn": first.number,
        "rater": first.rater,
        "created_at": first.created_at.isoformat(),
        "updated_at": first.updated_at.isoformat(),
        "blind": first.blind,
        "n_models": len(rows),
        "all_bad": first.all_bad,
        "ranking": None if first.all_bad else ranking_of(ranks),
        "comment": first.comment,
        "system": first.system_prompt,
        "prompt": first.prompt,
        "base_format": first.base_format,
        "params": first.params,
        "answers": [
            {
                "slot": row.slot,
                "position": row.position,
                "rank": row.rank,
                "score": row.score,
                "generation_id": row.generation_id,
                "model": row.model_name,
                "kind": row.model_kind,
                "served_model": row.served_model,
                "revision": row.model_revision,
                "prompt_format": row.prompt_format,
                "prompt_sent": row.prompt_text if row.prompt_text is not None else row.messages,
                "text": row.text,
                "finish_reason": row.finish_reason,
                "completion_tokens": row.completion_tokens,
                "seed": row.seed,
            }
            for row in rows
        ],
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


async def stream_judgements_jsonl(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[str]:
    """Yield the JSONL in chunks; one judgement's rows are gathered as they stream past."""
    pending: list[Row[Any]] = []
    async with sessions() as session:
        # Core rows: the ORM's per-row bookkeeping is wasted on a read-only stream.
        result = await (await session.connection()).stream(_statement())
        async for partition in result.partitions():
            lines = []
            for row in partition:
                if pending and pending[0].judgement_id != row.judgement_id:
                    lines.append(_record(pending))
                    pending = []
                pending.append(row)
            if lines:
                yield "".join(lines)
    if pending:
        yield _record(pending)

"""The ratings CSV: one row per vote, streamed from the database in chunks (memory stays flat)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Row, and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.comparisons.models import Conversation, Generation, TokenShiftAnalysis, Turn, Vote
from app.exports.cells import neutralise

COLUMNS = [
    "vote_id", "voted_at", "rater", "conversation_id", "turn", "system", "prompt", "history_json",
    "model_a", "kind_a", "model_b", "kind_b", "prompt_sent_a", "prompt_sent_b",
    "response_a", "response_b", "winner", "winner_model", "score_a", "score_b", "comment",
    "temperature", "top_p", "top_k", "max_tokens", "seed", "stop",
    "finish_reason_a", "finish_reason_b", "completion_tokens_a", "completion_tokens_b",
    "shifted_ratio_a", "shifted_ratio_b",
]  # fmt: skip

CHUNK_ROWS = 1000


def _generation_columns(table: Any, prefix: str) -> list[Any]:
    """The few columns of a generation the export needs, as plain values (no ORM objects)."""
    return [
        table.text.label(f"{prefix}_text"),
        table.prompt_text.label(f"{prefix}_prompt_text"),
        table.messages.label(f"{prefix}_messages"),
        table.finish_reason.label(f"{prefix}_finish_reason"),
        table.completion_tokens.label(f"{prefix}_completion_tokens"),
    ]


def _statement() -> Any:
    """Every turn in conversation order, with its current answers and each vote's judged answers."""
    current_a, current_b = aliased(Generation), aliased(Generation)
    judged_a, judged_b = aliased(Generation), aliased(Generation)
    # The token-shift analyses of the judged answers (at most one each), for their ratios.
    shift_a, shift_b = aliased(TokenShiftAnalysis), aliased(TokenShiftAnalysis)
    return (
        select(
            Conversation.id.label("conversation_id"),
            Conversation.system_prompt,
            Conversation.model_a,
            Conversation.kind_a,
            Conversation.model_b,
            Conversation.kind_b,
            Turn.id.label("turn_id"),
            Turn.number,
            Turn.prompt,
            Turn.params,
            current_a.text.label("current_a_text"),
            current_b.text.label("current_b_text"),
            Vote.id.label("vote_id"),
            Vote.updated_at,
            Vote.rater,
            Vote.winner,
            Vote.score_a,
            Vote.score_b,
            Vote.comment,
            *_generation_columns(judged_a, "a"),
            *_generation_columns(judged_b, "b"),
            shift_a.shifted_ratio.label("a_shifted_ratio"),
            shift_b.shifted_ratio.label("b_shifted_ratio"),
        )
        .join(Conversation, Turn.conversation_id == Conversation.id)
        .outerjoin(
            current_a,
            and_(current_a.turn_id == Turn.id, current_a.side == "a", current_a.is_current),
        )
        .outerjoin(
            current_b,
            and_(current_b.turn_id == Turn.id, current_b.side == "b", current_b.is_current),
        )
        .outerjoin(Vote, Vote.turn_id == Turn.id)
        .outerjoin(judged_a, judged_a.id == Vote.generation_a_id)
        .outerjoin(judged_b, judged_b.id == Vote.generation_b_id)
        .outerjoin(shift_a, shift_a.generation_id == judged_a.id)
        .outerjoin(shift_b, shift_b.generation_id == judged_b.id)
        .order_by(Conversation.created_at, Conversation.id, Turn.number, Vote.id)
        .execution_options(yield_per=CHUNK_ROWS)
    )


class _HistoryTracker:
    """The earlier turns of the conversation being streamed (only one is held at a time)."""

    def __init__(self) -> None:
        self.conversation_id: str | None = None
        self.turns: list[dict[str, str]] = []
        self._last_turn_id: int | None = None
        self._pending: dict[str, str] = {}
        self._json = "[]"

    def before(self, row: Row[Any]) -> str:
        """The history_json for this row's turn, then remember the turn for the ones after it."""
        if row.conversation_id != self.conversation_id:
            self.conversation_id, self.turns, self._last_turn_id = row.conversation_id, [], None
            self._json = "[]"
        if row.turn_id != self._last_turn_id:
            if self._last_turn_id is not None:
                self.turns.append(self._pending)
                self._json = json.dumps(self.turns, ensure_ascii=False)
            self._pending = {
                "prompt": row.prompt,
                "response_a": row.current_a_text or "",
                "response_b": row.current_b_text or "",
            }
            self._last_turn_id = row.turn_id
        return self._json


def _prompt_sent(prompt_text: str | None, messages: Any) -> str:
    """What the model received: the raw text, or the messages as JSON."""
    if prompt_text is not None:
        return prompt_text
    if messages is None:
        return ""
    return json.dumps(messages, ensure_ascii=False)


def _row(row: Row[Any], history: str) -> list[Any]:
    params = row.params or {}
    winner_model = {"a": row.model_a, "b": row.model_b}.get(row.winner, "")
    cells: list[Any] = [
        row.vote_id, row.updated_at.isoformat(), row.rater, row.conversation_id, row.number,
        row.system_prompt or "", row.prompt, history,
        row.model_a, row.kind_a, row.model_b, row.kind_b,
        _prompt_sent(row.a_prompt_text, row.a_messages),
        _prompt_sent(row.b_prompt_text, row.b_messages),
        row.a_text or "", row.b_text or "",
        row.winner, winner_model, row.score_a, row.score_b, row.comment or "",
        params.get("temperature"), params.get("top_p"), params.get("top_k"),
        params.get("max_tokens"), params.get("seed"), json.dumps(params.get("stop") or []),
        row.a_finish_reason or "", row.b_finish_reason or "",
        row.a_completion_tokens, row.b_completion_tokens,
        row.a_shifted_ratio, row.b_shifted_ratio,
    ]  # fmt: skip
    return [neutralise(c) if isinstance(c, str) else ("" if c is None else c) for c in cells]


def _rows_csv(rows: Sequence[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


async def stream_ratings_csv(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[str]:
    """Yield the CSV in chunks of rows; the session lives as long as the download."""
    yield _rows_csv([COLUMNS])
    history = _HistoryTracker()
    async with sessions() as session:
        result = await session.stream(_statement())
        async for partition in result.partitions():
            chunk = []
            for row in partition:
                history_json = history.before(row)
                if row.vote_id is not None:
                    chunk.append(_row(row, history_json))
            if chunk:
                yield _rows_csv(chunk)

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

from app.comparisons.models import Conversation, Generation, Turn, Vote

COLUMNS = [
    "vote_id", "voted_at", "rater", "conversation_id", "turn", "system", "prompt", "history_json",
    "model_a", "kind_a", "model_b", "kind_b", "prompt_sent_a", "prompt_sent_b",
    "response_a", "response_b", "winner", "winner_model", "score_a", "score_b", "comment",
    "temperature", "top_p", "top_k", "max_tokens", "seed", "stop",
    "finish_reason_a", "finish_reason_b", "completion_tokens_a", "completion_tokens_b",
]  # fmt: skip

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 1000


def neutralise(cell: str) -> str:
    """Prefix a would-be formula with an apostrophe so spreadsheets show it as text."""
    return "'" + cell if cell.startswith(FORMULA_TRIGGERS) else cell


def prompt_sent(generation: Generation | None) -> str:
    """What the model received: the raw text, or the messages as JSON."""
    if generation is None:
        return ""
    if generation.prompt_text is not None:
        return generation.prompt_text
    return json.dumps(generation.messages, ensure_ascii=False)


def _statement() -> Any:
    """Every turn in conversation order, with its current answers and each vote's judged answers."""
    current_a, current_b = aliased(Generation), aliased(Generation)
    judged_a, judged_b = aliased(Generation), aliased(Generation)
    return (
        select(Turn, Conversation, current_a, current_b, Vote, judged_a, judged_b)
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

    def before(self, turn: Turn, current_a: Generation | None, current_b: Generation | None) -> str:
        """The history_json for this turn, then remember the turn for the ones after it."""
        if turn.conversation_id != self.conversation_id:
            self.conversation_id, self.turns, self._last_turn_id = turn.conversation_id, [], None
        if turn.id != self._last_turn_id:
            if self._last_turn_id is not None:
                self.turns.append(self._pending)
            self._pending = {
                "prompt": turn.prompt,
                "response_a": current_a.text if current_a else "",
                "response_b": current_b.text if current_b else "",
            }
            self._last_turn_id = turn.id
        return json.dumps(self.turns, ensure_ascii=False)


def _row(
    conversation: Conversation,
    turn: Turn,
    vote: Vote,
    gen_a: Generation | None,
    gen_b: Generation | None,
    history: str,
) -> list[Any]:
    params = turn.params
    winner_model = {"a": conversation.model_a, "b": conversation.model_b}.get(vote.winner, "")
    cells: list[Any] = [
        vote.id, vote.updated_at.isoformat(), vote.rater, conversation.id, turn.number,
        conversation.system_prompt or "", turn.prompt, history,
        conversation.model_a, conversation.kind_a, conversation.model_b, conversation.kind_b,
        prompt_sent(gen_a), prompt_sent(gen_b),
        gen_a.text if gen_a else "", gen_b.text if gen_b else "",
        vote.winner, winner_model, vote.score_a, vote.score_b, vote.comment or "",
        params.get("temperature"), params.get("top_p"), params.get("top_k"),
        params.get("max_tokens"), params.get("seed"), json.dumps(params.get("stop") or []),
        gen_a.finish_reason if gen_a else "", gen_b.finish_reason if gen_b else "",
        gen_a.completion_tokens if gen_a else None, gen_b.completion_tokens if gen_b else None,
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
            rows = [_convert(row, history) for row in partition]
            chunk = [r for r in rows if r is not None]
            if chunk:
                yield _rows_csv(chunk)
            # Loaded objects are not needed again; keep the identity map from growing.
            session.expunge_all()


def _convert(row: Row[Any], history: _HistoryTracker) -> list[Any] | None:
    turn, conversation, current_a, current_b, vote, judged_a, judged_b = row
    history_json = history.before(turn, current_a, current_b)
    if vote is None:
        return None
    return _row(conversation, turn, vote, judged_a, judged_b, history_json)

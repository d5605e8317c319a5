"""The ratings CSV: one row per rated PAIR of answers (a judgement of n answers gives
n(n-1)/2 rows), streamed from the database in chunks (memory stays flat)."""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Text, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.comparisons.judging import pair_outcome, pairs
from app.comparisons.models import Conversation, Judgement, JudgementEntry, Participant, Turn
from app.exports.judged import judged_answers
from app.generation.records import Generation
from app.lens.models import TokenShiftAnalysis
from app.spreadsheet import neutralise
from app.text import json_loads

COLUMNS = [
    "vote_id", "voted_at", "rater", "conversation_id", "turn", "system", "prompt", "history_json",
    "model_a", "kind_a", "model_b", "kind_b", "prompt_sent_a", "prompt_sent_b",
    "response_a", "response_b", "winner", "winner_model", "score_a", "score_b", "comment",
    "temperature", "top_p", "top_k", "max_tokens", "seed", "stop",
    "finish_reason_a", "finish_reason_b", "completion_tokens_a", "completion_tokens_b",
    "shifted_ratio_a", "shifted_ratio_b",
    # Since N-way comparisons: which judgement and columns a pair came from, where each
    # answer was shown, whether the rater judged blind, and how many answers were judged.
    "judgement_id", "slot_a", "slot_b", "position_a", "position_b", "blind", "n_models",
]  # fmt: skip


def _statement() -> Any:
    """Every judged answer (one row per judgement entry) with its turn, model and analysis."""
    return judged_answers(
        Conversation.id.label("conversation_id"),
        Conversation.system_prompt,
        Turn.id.label("turn_id"),
        Turn.number,
        Turn.prompt,
        cast(Turn.params, Text).label("params"),
        Judgement.id.label("judgement_id"),
        Judgement.updated_at,
        Judgement.rater,
        Judgement.all_bad,
        Judgement.comment,
        Judgement.blind,
        JudgementEntry.slot,
        JudgementEntry.position,
        JudgementEntry.rank,
        JudgementEntry.score,
        Participant.model_name,
        Participant.model_kind,
        Generation.text,
        Generation.prompt_text,
        cast(Generation.messages, Text).label("messages"),
        Generation.finish_reason,
        Generation.completion_tokens,
        TokenShiftAnalysis.shifted_ratio,
    ).outerjoin(TokenShiftAnalysis, TokenShiftAnalysis.generation_id == Generation.id)


@dataclass
class _Judged:
    """One judgement's rows, gathered as they stream past (at most four entries)."""

    first: Row[Any]
    entries: dict[str, Row[Any]]


class _History:
    """The earlier turns of the conversations being exported: their prompts and the current
    answers per column, read in one query per chunk of rows (a query per conversation was most
    of the export's time) and only for conversations where a later turn is judged."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._turns: dict[str, list[tuple[int, str, dict[str, str]]]] = {}

    async def prefetch(self, conversation_ids: set[str]) -> None:
        """Hold the history of exactly these conversations (memory stays one chunk's worth)."""
        kept = {cid: turns for cid, turns in self._turns.items() if cid in conversation_ids}
        missing = conversation_ids - kept.keys()
        self._turns = kept
        if missing:
            self._turns.update(await self._load(missing))

    async def json(self, conversation_id: str, number: int, slot_a: str, slot_b: str) -> str:
        """history_json for a pair of columns at a turn: each earlier turn's prompt and answers."""
        if number == 1:
            return "[]"
        if conversation_id not in self._turns:
            self._turns.update(await self._load({conversation_id}))
        return json.dumps(
            [
                {
                    "prompt": prompt,
                    "response_a": answers.get(slot_a, ""),
                    "response_b": answers.get(slot_b, ""),
                }
                for turn_number, prompt, answers in self._turns.get(conversation_id, [])
                if turn_number < number
            ],
            ensure_ascii=False,
        )

    async def _load(
        self, conversation_ids: set[str]
    ) -> dict[str, list[tuple[int, str, dict[str, str]]]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    Turn.conversation_id, Turn.number, Turn.prompt, Generation.slot, Generation.text
                )
                .outerjoin(
                    Generation,
                    and_(Generation.turn_id == Turn.id, Generation.is_current),
                )
                .where(Turn.conversation_id.in_(sorted(conversation_ids)))
                .order_by(Turn.conversation_id, Turn.number, Generation.slot)
            )
            found: dict[str, dict[int, tuple[str, dict[str, str]]]] = {}
            for conversation_id, number, prompt, slot, text in rows.tuples():
                turns = found.setdefault(conversation_id, {})
                _, answers = turns.setdefault(number, (prompt, {}))
                if slot is not None and slot != "p":
                    answers[slot] = text or ""
        return {
            cid: [(number, prompt, answers) for number, (prompt, answers) in turns.items()]
            for cid, turns in found.items()
        }


def _prompt_sent(prompt_text: str | None, messages: str | None) -> str:
    """What the model received: the raw text, or the messages as JSON (read as stored text)."""
    if prompt_text is not None:
        return prompt_text
    if messages is None or messages == "null":  # SQL NULL, or JSON null from the ORM
        return ""
    if "\\" not in messages:
        # Stored by json.dumps with its default separators and nothing escaped: decoding and
        # encoding again would give the same text.
        return messages
    return json.dumps(json_loads(messages), ensure_ascii=False)


@functools.lru_cache(maxsize=256)
def _params(raw: str | None) -> dict[str, Any]:
    """A turn's sampling settings, decoded once per distinct stored text (most runs share one)."""
    return (json_loads(raw) if raw else None) or {}


def _pair_row(judged: _Judged, a: Row[Any], b: Row[Any], history: str) -> list[Any]:
    row = judged.first
    params = _params(row.params)
    winner = pair_outcome(a.rank, b.rank, row.all_bad).value
    winner_model = {"a": a.model_name, "b": b.model_name}.get(winner, "")
    cells: list[Any] = [
        row.judgement_id, row.updated_at.isoformat(), row.rater, row.conversation_id, row.number,
        row.system_prompt or "", row.prompt, history,
        a.model_name, a.model_kind, b.model_name, b.model_kind,
        _prompt_sent(a.prompt_text, a.messages), _prompt_sent(b.prompt_text, b.messages),
        a.text or "", b.text or "",
        winner, winner_model, a.score, b.score, row.comment or "",
        params.get("temperature"), params.get("top_p"), params.get("top_k"),
        params.get("max_tokens"), params.get("seed"), json.dumps(params.get("stop") or []),
        a.finish_reason or "", b.finish_reason or "",
        a.completion_tokens, b.completion_tokens,
        a.shifted_ratio, b.shifted_ratio,
        row.judgement_id, a.slot, b.slot, a.position, b.position,
        "true" if row.blind else "false", len(judged.entries),
    ]  # fmt: skip
    return [neutralise(c) if isinstance(c, str) else ("" if c is None else c) for c in cells]


async def _pair_rows(judged: _Judged, history: _History) -> list[list[Any]]:
    """A judgement's rows: one per pair of its answers, in slot order."""
    rows = []
    for slot_a, slot_b in pairs(list(judged.entries)):
        first = judged.first
        history_json = await history.json(first.conversation_id, first.number, slot_a, slot_b)
        rows.append(_pair_row(judged, judged.entries[slot_a], judged.entries[slot_b], history_json))
    return rows


def _rows_csv(rows: Sequence[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


async def stream_ratings_csv(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[str]:
    """Yield the CSV in chunks of rows; the session lives as long as the download."""
    yield _rows_csv([COLUMNS])
    history = _History(sessions)
    judged: _Judged | None = None
    async with sessions() as session:
        # Core rows, not ORM ones: the ORM's per-row bookkeeping was a fifth of the export.
        connection = await session.connection()
        result = await connection.stream(_statement())
        async for partition in result.partitions():
            complete: list[_Judged] = []
            for row in partition:
                if judged is not None and judged.first.judgement_id != row.judgement_id:
                    complete.append(judged)
                    judged = None
                if judged is None:
                    judged = _Judged(row, {})
                judged.entries[row.slot] = row
            if complete:
                yield _rows_csv(await _chunk_rows(complete, history))
    if judged is not None:
        yield _rows_csv(await _chunk_rows([judged], history))


async def _chunk_rows(complete: list[_Judged], history: _History) -> list[list[Any]]:
    """The rows of a chunk's judgements, with the histories they need read at once."""
    await history.prefetch({j.first.conversation_id for j in complete if j.first.number > 1})
    chunk: list[list[Any]] = []
    for judged in complete:
        chunk += await _pair_rows(judged, history)
    return chunk

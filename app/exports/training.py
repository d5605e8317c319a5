"""Training-ready records from judgements: DPO and reward pairs, KTO labels (TRL's formats).

Rows stream from the database in chunks (memory stays flat); one judgement's answers are
gathered as they pass, and earlier turns are read once per conversation when needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.comparisons.models import Conversation, Judgement, JudgementEntry, Participant, Turn
from app.exports.judged import judged_answers
from app.generation.records import Generation
from app.leaderboard.filters import Filters

Message = dict[str, str]


class Kind(StrEnum):
    """Which dataset: DPO pairs, KTO labelled answers, or reward-model pairs."""

    DPO = "dpo"
    KTO = "kto"
    REWARD = "reward"


class Form(StrEnum):
    """Plain strings, or lists of {"role", "content"} messages."""

    STANDARD = "standard"
    CONVERSATIONAL = "conversational"


class Ties(StrEnum):
    """Ties and both-bad: dropped, or (KTO only) every answer as a negative."""

    DROP = "drop"
    KTO_NEGATIVE = "kto_negative"


@dataclass(frozen=True)
class Options:
    """What to export and how."""

    kind: Kind
    form: Form = Form.STANDARD
    ties: Ties = Ties.DROP


def _statement(filters: Filters) -> Any:
    """Every judged answer under the filters, grouped by judgement, conversation by conversation."""
    statement = judged_answers(
        Judgement.id.label("judgement_id"),
        Judgement.rater,
        Judgement.all_bad,
        Conversation.id.label("conversation_id"),
        Conversation.system_prompt,
        Turn.number,
        Turn.prompt,
        JudgementEntry.slot,
        JudgementEntry.rank,
        Participant.model_name,
        Generation.text,
        Generation.seed,
    )
    return filters.apply(statement)


class _History:
    """Earlier turns of the conversation being exported: prompts and answers per column."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._conversation_id: str | None = None
        self._turns: list[tuple[int, str, dict[str, str]]] = []

    async def before(self, conversation_id: str, number: int) -> list[tuple[str, dict[str, str]]]:
        """(prompt, answers by slot) of each turn before this one."""
        if number == 1:
            return []
        if conversation_id != self._conversation_id:
            self._conversation_id = conversation_id
            self._turns = await self._load(conversation_id)
        return [(prompt, answers) for n, prompt, answers in self._turns if n < number]

    async def _load(self, conversation_id: str) -> list[tuple[int, str, dict[str, str]]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Turn.number, Turn.prompt, Generation.slot, Generation.text)
                .outerjoin(Generation, and_(Generation.turn_id == Turn.id, Generation.is_current))
                .where(Turn.conversation_id == conversation_id)
                .order_by(Turn.number, Generation.slot)
            )
            turns: dict[int, tuple[str, dict[str, str]]] = {}
            for number, prompt, slot, text in rows.tuples():
                _, answers = turns.setdefault(number, (prompt, {}))
                if slot is not None and slot != "p":
                    answers[slot] = text or ""
        return [(number, prompt, answers) for number, (prompt, answers) in turns.items()]


@dataclass(frozen=True)
class _Judged:
    """One judgement: its answers' rows and the earlier turns of its conversation."""

    rows: list[Row[Any]]
    history: list[tuple[str, dict[str, str]]]

    def messages(self, slot: str) -> list[Message]:
        """The conversation up to this turn's prompt, as the column `slot` saw it."""
        first = self.rows[0]
        messages = (
            [{"role": "system", "content": first.system_prompt}] if first.system_prompt else []
        )
        for prompt, answers in self.history:
            messages += [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": answers.get(slot, "")},
            ]
        return [*messages, {"role": "user", "content": first.prompt}]

    def text(self, slot: str) -> str:
        """The same as one string: the prompt alone on a first turn without a system prompt;
        otherwise a transcript ("System:", "User:", "Assistant:" blocks) ending "Assistant:"."""
        messages = self.messages(slot)
        if len(messages) == 1:
            return messages[0]["content"]
        return f"{_transcript(messages)}\n\nAssistant:"

    @property
    def separator(self) -> str:
        """What starts a standard-form answer: TRL joins prompt and completion as they are, so
        after a transcript's "Assistant:" the answer brings the space the transcript uses."""
        return " " if self.history or self.rows[0].system_prompt else ""

    def prompt(self, slot: str, form: Form) -> str | list[Message]:
        """The prompt in the chosen form."""
        return self.messages(slot) if form is Form.CONVERSATIONAL else self.text(slot)


def _transcript(messages: list[Message]) -> str:
    """Messages as "Role: content" blocks separated by blank lines."""
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def _answer(judged: _Judged, row: Row[Any], form: Form) -> str | list[Message]:
    text: str = row.text or ""
    if form is Form.CONVERSATIONAL:
        return [{"role": "assistant", "content": text}]
    return judged.separator + text


def _whole(judged: _Judged, row: Row[Any], form: Form) -> str | list[Message]:
    """Prompt and answer together (the reward format's implicit prompt); as one string, always
    the "User:" / "Assistant:" transcript."""
    messages = [*judged.messages(row.slot), {"role": "assistant", "content": row.text or ""}]
    return messages if form is Form.CONVERSATIONAL else _transcript(messages)


def _decided(judged: _Judged) -> Iterator[tuple[Row[Any], Row[Any]]]:
    """(better, worse) for every pair of answers with different ranks."""
    if judged.rows[0].all_bad:
        return
    for better in judged.rows:
        for worse in judged.rows:
            if better.rank is not None and worse.rank is not None and better.rank < worse.rank:
                yield better, worse


def _provenance(judged: _Judged) -> dict[str, Any]:
    first = judged.rows[0]
    return {"judgement_id": first.judgement_id, "rater": first.rater, "prompt_set": None}


def records(judged: _Judged, options: Options) -> list[dict[str, Any]]:
    """A judgement's records for one dataset kind and form."""
    form, base = options.form, _provenance(judged)
    if options.kind is Kind.KTO:
        return _kto(judged, options)
    out = []
    for chosen, rejected in _decided(judged):
        pair = {
            "models": {"chosen": chosen.model_name, "rejected": rejected.model_name},
            "seed": {"chosen": chosen.seed, "rejected": rejected.seed},
        }
        if options.kind is Kind.DPO:
            columns = {
                "prompt": judged.prompt(chosen.slot, form),
                "chosen": _answer(judged, chosen, form),
                "rejected": _answer(judged, rejected, form),
            }
        else:
            columns = {
                "chosen": _whole(judged, chosen, form),
                "rejected": _whole(judged, rejected, form),
            }
        out.append({**columns, **base, **pair})
    return out


def _kto(judged: _Judged, options: Options) -> list[dict[str, Any]]:
    """The best-ranked answers labelled true, the others false; a judgement with no winner
    (all tied, or all bad) is dropped or, with ties=kto_negative, all false."""
    ranks = {row.rank for row in judged.rows}
    undecided = judged.rows[0].all_bad or None in ranks or len(ranks) == 1
    if undecided and options.ties is Ties.DROP:
        return []
    best = None if undecided else min(r for r in ranks if r is not None)
    return [
        {
            "prompt": judged.prompt(row.slot, options.form),
            "completion": _answer(judged, row, options.form),
            "label": best is not None and row.rank == best,
            **_provenance(judged),
            "model": row.model_name,
            "seed": row.seed,
        }
        for row in judged.rows
    ]


async def stream_records(
    sessions: async_sessionmaker[AsyncSession], filters: Filters, options: Options
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield the records in chunks (one chunk per database partition)."""
    history = _History(sessions)
    pending: list[Row[Any]] = []

    async def finish(rows: list[Row[Any]]) -> list[dict[str, Any]]:
        first = rows[0]
        earlier = await history.before(first.conversation_id, first.number)
        return records(_Judged(rows, earlier), options)

    async with sessions() as session:
        # Core rows: the ORM's per-row bookkeeping is wasted on a read-only stream.
        result = await (await session.connection()).stream(_statement(filters))
        async for partition in result.partitions():
            chunk: list[dict[str, Any]] = []
            for row in partition:
                if pending and pending[0].judgement_id != row.judgement_id:
                    chunk += await finish(pending)
                    pending = []
                pending.append(row)
            if chunk:
                yield chunk
    if pending:
        yield await finish(pending)

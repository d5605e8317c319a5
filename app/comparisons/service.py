"""Comparison use cases shared by the HTML pages and the JSON API."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.comparisons.models import Conversation, Generation, Side, Turn, Vote
from app.comparisons.schemas import ComparisonInput, TurnInput, VoteInput
from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.generation.client import GenerationRequest
from app.generation.params import SamplingParams
from app.generation.prompts import (
    BaseFormat,
    Exchange,
    render_base_prompt,
    render_chat_messages,
)
from app.generation.runner import GenerationRunner

TITLE_CHARS = 80


@dataclass
class ComparisonService:
    """Creates turns, starts both generations, records votes; the caller's session commits."""

    session: AsyncSession
    models: ModelsFile
    runner: GenerationRunner
    settings: Settings

    async def start_conversation(self, data: ComparisonInput) -> Turn:
        """Create a conversation and its first turn, and start both models on it."""
        model_a, model_b = self._pick_models(data.models)
        system = (data.system or "").strip() or None
        if system is not None and len(system) > self.settings.max_system_chars:
            raise InvalidInput(
                f"system prompt is too long ({len(system)} > {self.settings.max_system_chars})"
            )
        self._check_prompt(data.prompt)
        conversation = Conversation(
            title=_title(data.prompt),
            system_prompt=system,
            base_format=data.base_format.value,
            model_a=model_a.name,
            kind_a=model_a.kind.value,
            model_b=model_b.name,
            kind_b=model_b.kind.value,
        )
        conversation.turns = []
        self.session.add(conversation)
        return await self._add_turn(conversation, data)

    async def continue_conversation(self, conversation_id: str, data: TurnInput) -> Turn:
        """Add a follow-up turn once both answers to the previous one are complete."""
        self._check_prompt(data.prompt)
        conversation = await self.get_conversation(conversation_id)
        latest = conversation.turns[-1]
        if not all(g.finished for g in _current_pair(latest)):
            raise Conflict(
                "wait until both answers are complete (or stop them) before following up"
            )
        conversation.updated_at = utcnow()
        return await self._add_turn(conversation, data)

    async def regenerate(self, conversation_id: str, turn_number: int, sides: list[Side]) -> Turn:
        """Run one or both sides of the latest turn again with the same prompt and settings."""
        conversation = await self.get_conversation(conversation_id)
        turn = _turn(conversation, turn_number)
        if turn is not conversation.turns[-1]:
            raise Conflict("only the latest turn can be regenerated")
        if not all(g.finished for g in _current_pair(turn)):
            raise Conflict("stop the running answers before regenerating")
        history = side_history(conversation, before=turn.number)
        params = SamplingParams.model_validate(turn.params)
        started: list[tuple[Generation, GenerationRequest]] = []
        for side in sides:
            old = turn.current(side)
            if old is not None:
                old.is_current = False
            started.append(self._new_generation(conversation, turn, side, history, params))
        await self._commit_and_start(turn, started)
        return turn

    async def vote(self, conversation_id: str, data: VoteInput) -> Vote:
        """Record a rater's verdict on a turn whose answers are both complete."""
        conversation = await self.get_conversation(conversation_id)
        number = data.turn or conversation.turns[-1].number
        turn = _turn(conversation, number)
        if turn is not conversation.turns[-1]:
            raise Conflict(f"turn {number} is closed: votes can change only until the next turn")
        gen_a, gen_b = _current_pair(turn)
        if not (gen_a.finished and gen_b.finished):
            raise Conflict("both answers must be complete before voting")
        comment = (data.comment or "").strip() or None
        if comment is not None and len(comment) > self.settings.max_comment_chars:
            raise InvalidInput(f"comment is too long (max {self.settings.max_comment_chars})")
        vote = next((v for v in turn.votes if v.rater == data.rater), None)
        if vote is None:
            vote = Vote(turn=turn, rater=data.rater)
            self.session.add(vote)
        vote.generation_a_id = gen_a.id
        vote.generation_b_id = gen_b.id
        vote.winner = data.winner.value
        vote.score_a = data.score_a
        vote.score_b = data.score_b
        vote.comment = comment
        vote.updated_at = utcnow()
        await self.session.flush()
        return vote

    def stop(self, turn: Turn) -> int:
        """Cancel whatever is still generating for a turn."""
        return self.runner.cancel_turn(turn.id)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """A conversation with its turns, generations and votes loaded."""
        conversation = await self.session.scalar(
            select(Conversation)
            .where(Conversation.id == conversation_id)
            .options(
                selectinload(Conversation.turns).selectinload(Turn.generations),
                selectinload(Conversation.turns).selectinload(Turn.votes),
            )
            .execution_options(populate_existing=True)
        )
        if conversation is None:
            raise NotFound(f"no conversation {conversation_id!r}")
        return conversation

    async def get_turn(self, turn_id: int) -> Turn:
        """A turn with its generations."""
        turn = await self.session.scalar(
            select(Turn)
            .where(Turn.id == turn_id)
            .options(selectinload(Turn.generations), selectinload(Turn.votes))
            .execution_options(populate_existing=True)
        )
        if turn is None:
            raise NotFound(f"no turn {turn_id}")
        return turn

    async def recent_conversations(self, limit: int = 50) -> list[Conversation]:
        """The newest conversations first."""
        result = await self.session.scalars(
            select(Conversation).order_by(Conversation.created_at.desc()).limit(limit)
        )
        return list(result)

    def _pick_models(self, names: list[str] | None) -> tuple[ModelConfig, ModelConfig]:
        if names is None:
            base = self.models.first_of_kind(ModelKind.BASE)
            chat = self.models.first_of_kind(ModelKind.CHAT)
            if base is None or chat is None:
                raise InvalidInput("name two models: the models file lacks a base or a chat model")
            return base, chat
        picked = []
        for name in names:
            model = self.models.get(name)
            if model is None:
                known = ", ".join(m.name for m in self.models.models)
                raise InvalidInput(f"unknown model {name!r} (configured: {known})")
            picked.append(model)
        return picked[0], picked[1]

    def _check_prompt(self, prompt: str) -> None:
        if not prompt.strip():
            raise InvalidInput("the prompt is empty")
        if len(prompt) > self.settings.max_prompt_chars:
            limit = self.settings.max_prompt_chars
            raise InvalidInput(f"the prompt is too long ({len(prompt)} > {limit} characters)")

    async def _add_turn(self, conversation: Conversation, data: TurnInput) -> Turn:
        params = data.params
        limit = self.settings.max_tokens_limit
        if "max_tokens" not in params.model_fields_set and params.max_tokens > limit:
            params = params.model_copy(update={"max_tokens": limit})
        if params.max_tokens > limit:
            raise InvalidInput(f"max_tokens is at most {limit}")
        params = params.with_seed()
        number = len(conversation.turns) + 1
        history = side_history(conversation, before=number)
        turn = Turn(number=number, prompt=data.prompt, params=params.model_dump())
        turn.generations = []
        turn.votes = []
        conversation.turns.append(turn)
        started = [
            self._new_generation(conversation, turn, side, history, params)
            for side in (Side.A, Side.B)
        ]
        await self._commit_and_start(turn, started)
        return turn

    def _new_generation(
        self,
        conversation: Conversation,
        turn: Turn,
        side: Side,
        history: dict[Side, list[Exchange]],
        params: SamplingParams,
    ) -> tuple[Generation, GenerationRequest]:
        """A pending generation row and the exact request that will produce it."""
        name = conversation.model_a if side is Side.A else conversation.model_b
        model = self.models.get(name)
        if model is None:
            raise Conflict(f"model {name!r} is no longer configured")
        if model.kind is ModelKind.BASE:
            fmt = BaseFormat(conversation.base_format)
            rendered = render_base_prompt(
                fmt,
                turn.prompt,
                history[side],
                conversation.system_prompt,
                self.settings.urial_file,
            )
            request = GenerationRequest(
                model,
                params.request_fields(rendered.extra_stop),
                prompt_text=rendered.text,
                top_logprobs=self.settings.token_top_k,
            )
            prompt_format = fmt.value
        else:
            messages = render_chat_messages(turn.prompt, history[side], conversation.system_prompt)
            request = GenerationRequest(
                model,
                params.request_fields(),
                messages=messages,
                top_logprobs=self.settings.token_top_k,
            )
            prompt_format = "chat"
        generation = Generation(
            side=side.value,
            is_current=True,
            model_name=model.name,
            model_kind=model.kind.value,
            served_model=model.model,
            model_revision=model.revision,
            endpoint=request.endpoint,
            prompt_format=prompt_format,
            prompt_text=request.prompt_text,
            messages=request.messages,
            params=request.sampling,
            seed=params.seed,
            status="pending",
            text="",
        )
        turn.generations.append(generation)
        return generation, request

    async def _commit_and_start(
        self, turn: Turn, started: list[tuple[Generation, GenerationRequest]]
    ) -> None:
        """Commit the pending rows first, so the runner's updates always find them."""
        await self.session.commit()
        for generation, request in started:
            self.runner.start(generation.id, turn.id, request)


def _title(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def _turn(conversation: Conversation, number: int) -> Turn:
    turn = next((t for t in conversation.turns if t.number == number), None)
    if turn is None:
        raise NotFound(f"conversation {conversation.id} has no turn {number}")
    return turn


def _current_pair(turn: Turn) -> tuple[Generation, Generation]:
    gen_a, gen_b = turn.current(Side.A), turn.current(Side.B)
    if gen_a is None or gen_b is None:
        raise Conflict(f"turn {turn.number} has no answers")
    return gen_a, gen_b


def side_history(conversation: Conversation, before: int) -> dict[Side, list[Exchange]]:
    """Each side's own view of the earlier turns: the prompts and its own answers."""
    history: dict[Side, list[Exchange]] = {Side.A: [], Side.B: []}
    for turn in conversation.turns:
        if turn.number >= before:
            break
        for side in (Side.A, Side.B):
            generation = turn.current(side)
            history[side].append(Exchange(turn.prompt, generation.text if generation else ""))
    return history

"""Comparison use cases shared by the HTML pages and the JSON API."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.comparisons import judging, queries, recording, vote_batches, voting
from app.comparisons.models import (
    MAX_MODELS,
    MIN_MODELS,
    SLOTS,
    Conversation,
    Participant,
    Turn,
)
from app.comparisons.schemas import ComparisonInput, TurnInput, VoteInput
from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.generation.contract import GenerationRequest, contract_for
from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat, Exchange
from app.generation.records import Generation
from app.generation.runner import GenerationRunner
from app.identity.current import Identity

TITLE_CHARS = 80


@dataclass
class ComparisonService:
    """Creates turns, starts every model on them, records judgements.

    Methods that change state commit before they return (a 2xx means committed) or leave
    the commit to the request's session; generations start only after their rows commit.
    """

    session: AsyncSession
    models: ModelsFile
    runner: GenerationRunner
    settings: Settings
    # Team mode: the signed-in account (owner of what it starts, rater of what it judges).
    account: Identity | None = None

    def rater_name(self, given: str | None) -> str:
        """Who judges: the account in team mode (never the request's text), else the name given."""
        if self.account is not None:
            return self.account.username
        if not given:
            raise InvalidInput("rater: give the rater's name")
        return given

    def shown_rater(self) -> str | None:
        """Whose judgements a reader sees: only their own for a rater account; all otherwise."""
        if self.account is not None and not self.account.is_admin:
            return self.account.username
        return None

    def viewer(self, given: str | None) -> str | None:
        """Whose judgements reveal a blind comparison's names: the account's, else the name."""
        return self.account.username if self.account is not None else given

    async def start_conversation(self, data: ComparisonInput) -> Turn:
        """Create a conversation and its first turn, and start every model on it."""
        picked = self._pick_models(data.models)
        system = (data.system or "").strip() or None
        if system is not None and len(system) > self.settings.max_system_chars:
            raise InvalidInput(
                f"system prompt is too long ({len(system)} > {self.settings.max_system_chars})"
            )
        self._check_prompt(data.prompt)
        if data.blind:
            # Blind: the models take the slots in a random order, so that neither a slot letter
            # nor a column position says which model is which.
            picked = random.sample(picked, len(picked))
        conversation = Conversation(
            title=_title(data.prompt),
            system_prompt=system,
            base_format=data.base_format.value,
            blind=data.blind,
            owner_id=self.account.id if self.account is not None else None,
        )
        conversation.participants = [
            Participant(slot=slot, position=i, model_name=m.name, model_kind=m.kind.value)
            for i, (slot, m) in enumerate(zip(SLOTS, picked, strict=False))
        ]
        conversation.turns = []
        self.session.add(conversation)
        return await self._add_turn(conversation, data)

    async def continue_conversation(self, conversation_id: str, data: TurnInput) -> Turn:
        """Add a follow-up turn once every answer to the previous one is complete."""
        self._check_prompt(data.prompt)
        conversation = await self.get_conversation(conversation_id)
        latest = conversation.turns[-1]
        if not all(g.finished for g in current_generations(conversation, latest)):
            raise Conflict("wait until every answer is complete (or stop them) before following up")
        conversation.updated_at = utcnow()
        return await self._add_turn(conversation, data)

    async def regenerate(self, conversation_id: str, turn_number: int, slots: list[str]) -> Turn:
        """Run some columns of the latest turn again with the same prompt and settings."""
        conversation = await self.get_conversation(conversation_id)
        turn = _turn(conversation, turn_number)
        if turn is not conversation.turns[-1]:
            raise Conflict("only the latest turn can be regenerated")
        unknown = [s for s in slots if conversation.participant(s) is None]
        if unknown or not slots:
            raise NotFound(f"choose columns among {conversation.slots}")
        if any(not g.finished for g in current_generations(conversation, turn, slots)):
            raise Conflict("stop the running answer before regenerating it")
        history = slot_history(conversation, before=turn.number)
        params = SamplingParams.model_validate(turn.params)
        started: list[tuple[Generation, GenerationRequest]] = []
        for slot in slots:
            old = turn.current(slot)
            if old is not None:
                old.is_current = False
            started.append(self._new_generation(conversation, turn, slot, history, params))
        await self._commit_and_start(turn, started)
        return turn

    async def judge(self, conversation_id: str, data: VoteInput) -> recording.Recorded:
        """Record a rater's judgement of a turn whose answers are all complete; the same rater
        judging the turn again replaces the earlier judgement (also when both arrive at once:
        the later commit wins). Commits before it returns."""
        rater = self.rater_name(data.rater)
        comment = (data.comment or "").strip() or None
        if comment is not None and len(comment) > self.settings.max_comment_chars:
            raise InvalidInput(f"comment is too long (max {self.settings.max_comment_chars})")

        async def read(conn: AsyncConnection) -> tuple[recording.Target, voting.Verdict]:
            # Core on the session's connection: no ORM objects on this path.
            target = await recording.load(conn, conversation_id, data.turn)
            seen = data.seen_ids()
            if seen is not None and seen != target.answers:
                raise Conflict(
                    "the answers changed since you saw them (a column was regenerated): "
                    "reload the page and judge the answers shown now"
                )
            slots = target.slots
            ranks = self._ranks(data, slots)
            scores = data.all_scores()
            unknown = sorted(set(scores) - set(slots))
            if unknown:
                raise InvalidInput(f"scores: {unknown} are not answers of this turn ({slots})")
            return target, voting.Verdict(rater, ranks, scores, comment)

        return await vote_batches.record(self.session, read)

    def stop(
        self, conversation: Conversation, turn: Turn, slots: Sequence[str] | None = None
    ) -> int:
        """Cancel whatever is still generating in a turn's columns (all, or these), in
        whichever process runs it; each keeps its partial text."""
        return self.runner.stop(
            (g.id, g.owner)
            for g in current_generations(conversation, turn, slots)
            if not g.finished
        )

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """A conversation with its turns, generations and judgements loaded."""
        return await queries.load_conversation(self.session, conversation_id)

    async def get_turn(self, turn_id: int) -> Turn:
        """A turn with its generations and judgements."""
        return await queries.load_turn(self.session, turn_id)

    async def turn_number(self, turn_id: int) -> int:
        """A turn's number in its conversation (without loading its answers)."""
        return await queries.turn_number(self.session, turn_id)

    async def recent_conversations(self, limit: int = 50) -> list[Conversation]:
        """The newest conversations first; a rater account's own only (their prompts are
        theirs; admins and local mode list everyone's)."""
        account = self.account
        owner = account.id if account is not None and not account.is_admin else None
        return await queries.recent_conversations(self.session, limit, owner)

    def _ranks(self, data: VoteInput, slots: list[str]) -> judging.Ranks:
        if data.winner is not None:
            return judging.ranks_from_winner(data.winner, slots)
        if data.ranking is not None:
            return judging.ranks_from_ranking(data.ranking, slots)
        return dict.fromkeys(slots)

    def _pick_models(self, names: list[str] | None) -> list[ModelConfig]:
        if names is None:
            base = self.models.first_of_kind(ModelKind.BASE)
            chat = self.models.first_of_kind(ModelKind.CHAT)
            if base is None or chat is None:
                raise InvalidInput("name two models: the models file lacks a base or a chat model")
            return [base, chat]
        if not MIN_MODELS <= len(names) <= MAX_MODELS:
            raise InvalidInput(f"choose {MIN_MODELS} to {MAX_MODELS} models, not {len(names)}")
        picked = []
        for name in names:
            model = self.models.get(name)
            if model is None:
                known = ", ".join(m.name for m in self.models.models)
                raise InvalidInput(f"unknown model {name!r} (configured: {known})")
            picked.append(model)
        return picked

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
        history = slot_history(conversation, before=number)
        turn = Turn(number=number, prompt=data.prompt, params=params.model_dump())
        turn.generations = []
        turn.judgements = []
        conversation.turns.append(turn)
        started = [
            self._new_generation(conversation, turn, slot, history, params)
            for slot in conversation.slots
        ]
        await self._commit_and_start(turn, started)
        return turn

    def _new_generation(
        self,
        conversation: Conversation,
        turn: Turn,
        slot: str,
        history: dict[str, list[Exchange]],
        params: SamplingParams,
    ) -> tuple[Generation, GenerationRequest]:
        """A pending generation row and the exact request that will produce it."""
        participant = conversation.participant(slot)
        assert participant is not None
        model = self.models.get(participant.model_name)
        if model is None:
            raise Conflict(f"model {participant.model_name!r} is no longer configured")
        prompted = contract_for(model.kind).prepare(
            model,
            turn.prompt,
            history[slot],
            conversation.system_prompt,
            params,
            base_format=BaseFormat(conversation.base_format),
            urial_file=self.settings.urial_file,
            top_logprobs=self.settings.token_top_k,
        )
        request = prompted.request
        generation = Generation.pending(
            request,
            slot=slot,
            prompt_format=prompted.prompt_format,
            seed=params.seed,
            owner=self.runner.owner,
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


def current_generations(
    conversation: Conversation, turn: Turn, slots: Sequence[str] | None = None
) -> list[Generation]:
    """The answers now shown in a turn's columns, in column order (or of these slots)."""
    answers = []
    for slot in conversation.slots:
        if slots is not None and slot not in slots:
            continue
        generation = turn.current(slot)
        if generation is None:
            raise Conflict(f"turn {turn.number} has no answer in column {slot}")
        answers.append(generation)
    return answers


def slot_history(conversation: Conversation, before: int) -> dict[str, list[Exchange]]:
    """Each column's own view of the earlier turns: the prompts and its own answers."""
    history: dict[str, list[Exchange]] = {slot: [] for slot in conversation.slots}
    for turn in conversation.turns:
        if turn.number >= before:
            break
        for slot in conversation.slots:
            generation = turn.current(slot)
            history[slot].append(Exchange(turn.prompt, generation.text if generation else ""))
    return history

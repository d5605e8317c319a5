"""Token-lens use cases shared by the pages and the JSON API: analyse, continue, render, store."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.comparisons.models import Conversation, Slot, Turn
from app.comparisons.queries import load_conversation
from app.comparisons.service import slot_history
from app.comparisons.views import label, revealed_to
from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.errors import Conflict, InvalidInput, NotFound
from app.generation.http import rendered_chat_prompt, tokenize_text
from app.generation.logprobs import TokenInfo
from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat, BasePrompt, render_base_prompt
from app.generation.records import Generation
from app.generation.runner import GenerationRunner
from app.lens.errors import LensError
from app.lens.models import TokenShiftAnalysis
from app.lens.prefix import DEFAULT_PREFIX_TOKENS, MAX_PREFIX_TOKENS, continue_from_prefix
from app.lens.queries import analysis_of
from app.lens.shift import DEFAULT_TOP_K, MAX_TOP_K, token_shift

# Real ids are never above this (PostgreSQL's integer); larger ones cannot exist.
MAX_ROW_ID = 2**31 - 1


@dataclass(frozen=True)
class LensTarget:
    """An answer the lens works on, with its turn, its conversation and its stored analysis."""

    generation: Generation
    turn: Turn
    conversation: Conversation
    analysis: TokenShiftAnalysis | None

    @property
    def label(self) -> str:
        """The display name of the answer's column (its model's name: the lens is open)."""
        participant = self.conversation.participant(self.generation.slot)
        return label(participant, True) if participant else self.generation.model_name

    @property
    def position(self) -> int | None:
        """Where the answer's column is shown."""
        participant = self.conversation.participant(self.generation.slot)
        return participant.position if participant else None


@dataclass
class LensService:
    """Token views, token-shift analyses, prefix continuations and rendered prompts.

    Every action checks everything it can before it stores anything: a failure leaves the
    database as it was. The caller's session commits.
    """

    session: AsyncSession
    models: ModelsFile
    http: httpx.AsyncClient
    runner: GenerationRunner
    settings: Settings
    # Team mode: the signed-in account's name, which alone unblinds (a given rater is ignored).
    account_name: str | None = None

    async def generation(self, generation_id: int) -> Generation:
        """A generation, fresh from the database (the runner stores in its own sessions)."""
        generation = None
        if 1 <= generation_id <= MAX_ROW_ID:
            generation = await self.session.get(Generation, generation_id, populate_existing=True)
        if generation is None:
            raise NotFound(f"no generation {generation_id}")
        return generation

    async def target(self, generation_id: int, rater: str | None = None) -> LensTarget:
        """A generation with its turn, conversation and stored analysis; refused while its
        comparison is blind to this rater (the lens would tell which model wrote it)."""
        if self.account_name is not None:
            rater = self.account_name
        generation = await self.generation(generation_id)
        conversation_id = await self.session.scalar(
            select(Turn.conversation_id).where(Turn.id == generation.turn_id)
        )
        if conversation_id is None:
            raise NotFound(f"no generation {generation_id}")
        conversation = await load_conversation(self.session, conversation_id)
        if not revealed_to(conversation, rater):
            raise Conflict(
                "this comparison is blind: the token lens opens once you have judged it "
                "(as that rater: ?rater=NAME in the API)"
            )
        turn = next(t for t in conversation.turns if t.id == generation.turn_id)
        generation = next(g for g in turn.generations if g.id == generation.id)
        return LensTarget(
            generation, turn, conversation, await analysis_of(self.session, generation.id)
        )

    def token_view(self, generation: Generation) -> list[TokenInfo]:
        """The generation's tokens with their logprobs and alternatives (LensError if none)."""
        if not generation.tokens:
            raise LensError(
                "this answer has no token logprobs (the server sent none, logprobs were off, "
                "or it has no tokens)"
            )
        return [TokenInfo.from_json(token) for token in generation.tokens]

    async def analyse(
        self,
        generation_id: int,
        base_model: str | None = None,
        top_k: int = DEFAULT_TOP_K,
        rater: str | None = None,
    ) -> TokenShiftAnalysis:
        """Score a chat answer under a base model (one scoring request) and store the result,
        replacing an earlier analysis of the same answer."""
        if not 1 <= top_k <= MAX_TOP_K:
            raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K}")
        target = await self.target(generation_id, rater)
        generation = target.generation
        chat = self._chat_model_of(generation)
        base = self._base_model_for(target.conversation, base_model)
        fmt = BaseFormat(target.conversation.base_format)
        context = self._base_context(target, fmt)
        answer_ids, chat_logprobs = await self._answer_tokens(generation, chat)
        result = await token_shift(
            self.http,
            base,
            context.text,
            answer_ids,
            top_k=top_k,
            chat=chat,
            chat_logprobs=chat_logprobs,
        )
        # Only now, with a complete result in hand, does anything change in the database.
        if target.analysis is not None:
            await self.session.delete(target.analysis)
            await self.session.flush()
        analysis = TokenShiftAnalysis(
            generation_id=generation.id,
            base_model=base.name,
            base_served_model=base.model,
            base_format=fmt.value,
            context_text=context.text,
            total_tokens=result.total,
            shifted_ratio=result.shifted_ratio,
            marginal_ratio=result.marginal_ratio,
            analysis=result.to_json(),
            elapsed_ms=None if result.elapsed_seconds is None else result.elapsed_seconds * 1000,
            requests=result.requests,
        )
        self.session.add(analysis)
        await self.session.flush()
        return analysis

    async def continue_prefix(
        self,
        generation_id: int,
        k: int = DEFAULT_PREFIX_TOKENS,
        base_model: str | None = None,
        rater: str | None = None,
    ) -> Generation:
        """Start the base model on the chat answer's first k tokens; returns the new (running)
        generation, committed, whose prompt is the base context followed by that prefix."""
        if not 0 <= k <= MAX_PREFIX_TOKENS:
            raise InvalidInput(f"k must be between 0 and {MAX_PREFIX_TOKENS}")
        target = await self.target(generation_id, rater)
        generation = target.generation
        chat = self._chat_model_of(generation)
        base = self._base_model_for(target.conversation, base_model)
        fmt = BaseFormat(target.conversation.base_format)
        context = self._base_context(target, fmt)
        answer_ids, _ = await self._answer_tokens(generation, chat)
        if k > len(answer_ids):
            raise InvalidInput(f"k must be at most the answer's {len(answer_ids)} tokens")
        params = SamplingParams.model_validate(target.turn.params)
        prepared = await continue_from_prefix(
            self.http, base, context.text, answer_ids, k, params, context.extra_stop
        )
        request = prepared.request
        request = type(request)(
            model=base,
            sampling=request.sampling,
            prompt_text=prepared.prompt_text,
            top_logprobs=self.settings.token_top_k,
            prompt_ids=prepared.prompt_ids,
        )
        # Its prompt is the base context followed by the prefix (sent as token ids).
        continuation = Generation.pending(
            request,
            slot=Slot.PREFIX.value,
            prompt_format=fmt.value,
            seed=params.seed,
            owner=self.runner.owner,
            prefix_of_id=generation.id,
            prefix_tokens=k,
        )
        target.turn.generations.append(continuation)
        await self.session.commit()
        self.runner.start(continuation.id, target.turn.id, request)
        return continuation

    async def rendered_prompt(self, generation_id: int, rater: str | None = None) -> Generation:
        """Fill in the exact string the model saw after its template, and its token count
        (asked of the model's own tokenizer once, then stored)."""
        generation = (await self.target(generation_id, rater)).generation
        if generation.rendered_prompt is not None:
            return generation
        model = self.models.get(generation.model_name)
        if model is None:
            raise Conflict(f"model {generation.model_name!r} is no longer configured")
        if generation.model_kind == ModelKind.CHAT.value:
            rendered = await rendered_chat_prompt(self.http, model, generation.messages or [])
            generation.rendered_prompt = rendered.text
            generation.rendered_prompt_tokens = rendered.token_count
        else:
            text = generation.prompt_text or ""
            tokenized = await tokenize_text(self.http, model, text)
            generation.rendered_prompt = text
            generation.rendered_prompt_tokens = tokenized.count
        await self.session.flush()
        return generation

    def _chat_model_of(self, generation: Generation) -> ModelConfig:
        """The chat model that wrote a finished answer (the lens works on chat answers)."""
        if generation.model_kind != ModelKind.CHAT.value or generation.slot == Slot.PREFIX:
            raise LensError(
                f"{generation.model_name} is a base model: the token lens scores a chat "
                "model's answer under its base model"
            )
        if not generation.finished:
            raise Conflict("wait until the answer is complete")
        if not generation.text:
            raise LensError("the answer is empty: there is nothing to analyse")
        model = self.models.get(generation.model_name)
        if model is None:
            raise Conflict(f"model {generation.model_name!r} is no longer configured")
        return model

    def _base_model_for(self, conversation: Conversation, name: str | None) -> ModelConfig:
        """The named base model, else the conversation's own base model, else the first one."""
        if name is not None:
            model = self.models.get(name)
            if model is None:
                raise InvalidInput(f"unknown model {name!r}")
            if model.kind is not ModelKind.BASE:
                raise InvalidInput(f"{name} is not a base model")
            return model
        for participant in conversation.participants:
            model = self.models.get(participant.model_name)
            if participant.model_kind == ModelKind.BASE.value and model is not None:
                return model
        model = self.models.first_of_kind(ModelKind.BASE)
        if model is None:
            raise LensError("no base model is configured to score the answer with")
        return model

    def _base_context(self, target: LensTarget, fmt: BaseFormat) -> BasePrompt:
        """What precedes the answer for a base model: the chat column's own conversation so
        far, written in the conversation's base format."""
        turn, conversation = target.turn, target.conversation
        history = slot_history(conversation, before=turn.number)[target.generation.slot]
        return render_base_prompt(
            fmt, turn.prompt, history, conversation.system_prompt, self.settings.urial_file
        )

    async def _answer_tokens(
        self, generation: Generation, chat: ModelConfig
    ) -> tuple[list[int], list[float | None] | None]:
        """The answer's token ids as generated (with the chat model's logprobs); when the server
        sent no ids, the chat tokenizer's ids for the answer's text."""
        if generation.tokens and all(t.get("token_id") is not None for t in generation.tokens):
            tokens = [TokenInfo.from_json(t) for t in generation.tokens]
            return [t.token_id for t in tokens if t.token_id is not None], [
                t.logprob for t in tokens
            ]
        tokenized = await tokenize_text(self.http, chat, generation.text, add_special_tokens=False)
        return tokenized.ids, None

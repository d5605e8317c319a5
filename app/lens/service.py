"""Token-lens use cases shared by the pages and the JSON API: analyse, continue, render, store."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.comparisons.models import (
    Conversation,
    Generation,
    GenerationStatus,
    Side,
    TokenShiftAnalysis,
    Turn,
)
from app.comparisons.service import side_history
from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.errors import Conflict, InvalidInput, NotFound
from app.generation.http import rendered_chat_prompt, tokenize_text
from app.generation.logprobs import TokenInfo
from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat, BasePrompt, render_base_prompt
from app.generation.runner import GenerationRunner
from app.lens.errors import LensError
from app.lens.prefix import DEFAULT_PREFIX_TOKENS, MAX_PREFIX_TOKENS, continue_from_prefix
from app.lens.shift import DEFAULT_TOP_K, MAX_TOP_K, token_shift


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

    async def generation(self, generation_id: int) -> Generation:
        """A generation with its turn, the turn's generations and its conversation loaded."""
        # Re-read what the runner stored in its own sessions. Not populate_existing: it resets
        # the generation's own `turn` when the generation is met again in Turn.generations.
        self.session.expire_all()
        generation = await self.session.scalar(
            select(Generation)
            .where(Generation.id == generation_id)
            .options(
                selectinload(Generation.turn).selectinload(Turn.generations),
                selectinload(Generation.turn)
                .selectinload(Turn.conversation)
                .selectinload(Conversation.turns)
                .selectinload(Turn.generations),
            )
        )
        if generation is None:
            raise NotFound(f"no generation {generation_id}")
        return generation

    def token_view(self, generation: Generation) -> list[TokenInfo]:
        """The generation's tokens with their logprobs and alternatives (LensError if none)."""
        if not generation.tokens:
            raise LensError(
                "this answer has no token logprobs (the server sent none, logprobs were off, "
                "or it has no tokens)"
            )
        return [TokenInfo.from_json(token) for token in generation.tokens]

    async def analyse(
        self, generation_id: int, base_model: str | None = None, top_k: int = DEFAULT_TOP_K
    ) -> TokenShiftAnalysis:
        """Score a chat answer under a base model (one scoring request) and store the result,
        replacing an earlier analysis of the same answer."""
        if not 1 <= top_k <= MAX_TOP_K:
            raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K}")
        generation = await self.generation(generation_id)
        chat = self._chat_model_of(generation)
        base = self._base_model_for(generation.turn.conversation, base_model)
        fmt = BaseFormat(generation.turn.conversation.base_format)
        context = self._base_context(generation, fmt)
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
        if generation.token_shift is not None:
            await self.session.delete(generation.token_shift)
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
        generation.token_shift = analysis
        return analysis

    async def continue_prefix(
        self, generation_id: int, k: int = DEFAULT_PREFIX_TOKENS, base_model: str | None = None
    ) -> Generation:
        """Start the base model on the chat answer's first k tokens; returns the new (running)
        generation, committed, whose prompt is the base context followed by that prefix."""
        if not 0 <= k <= MAX_PREFIX_TOKENS:
            raise InvalidInput(f"k must be between 0 and {MAX_PREFIX_TOKENS}")
        generation = await self.generation(generation_id)
        chat = self._chat_model_of(generation)
        base = self._base_model_for(generation.turn.conversation, base_model)
        fmt = BaseFormat(generation.turn.conversation.base_format)
        context = self._base_context(generation, fmt)
        answer_ids, _ = await self._answer_tokens(generation, chat)
        if k > len(answer_ids):
            raise InvalidInput(f"k must be at most the answer's {len(answer_ids)} tokens")
        params = SamplingParams.model_validate(generation.turn.params)
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
        continuation = Generation(
            side=Side.PREFIX.value,
            is_current=True,
            model_name=base.name,
            model_kind=base.kind.value,
            served_model=base.model,
            model_revision=base.revision,
            endpoint=request.endpoint,
            prompt_format=fmt.value,
            prompt_text=prepared.prompt_text,
            params=request.sampling,
            seed=params.seed,
            status=GenerationStatus.PENDING,
            text="",
            prefix_of_id=generation.id,
            prefix_tokens=k,
        )
        generation.turn.generations.append(continuation)
        await self.session.commit()
        self.runner.start(continuation.id, generation.turn_id, request)
        return continuation

    async def rendered_prompt(self, generation_id: int) -> Generation:
        """Fill in the exact string the model saw after its template, and its token count
        (asked of the model's own tokenizer once, then stored)."""
        generation = await self.generation(generation_id)
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
        if generation.model_kind != ModelKind.CHAT.value or generation.side == Side.PREFIX:
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
        for side_name, kind in (
            (conversation.model_a, conversation.kind_a),
            (conversation.model_b, conversation.kind_b),
        ):
            model = self.models.get(side_name)
            if kind == ModelKind.BASE.value and model is not None:
                return model
        model = self.models.first_of_kind(ModelKind.BASE)
        if model is None:
            raise LensError("no base model is configured to score the answer with")
        return model

    def _base_context(self, generation: Generation, fmt: BaseFormat) -> BasePrompt:
        """What precedes the answer for a base model: the chat side's own conversation so far,
        written in the conversation's base format."""
        turn = generation.turn
        conversation = turn.conversation
        side = Side(generation.side)
        history = side_history(conversation, before=turn.number)[side]
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

"""One run answer as the lens scores it: its base-format context, its token ids; and storing
the result as an ordinary TokenShiftAnalysis (so the answer's own lens views show it too)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import ModelConfig, ModelsFile, Settings
from app.errors import Conflict, NotFound
from app.generation.http import tokenize_text
from app.generation.logprobs import TokenInfo
from app.generation.prompts import BaseFormat, BasePrompt, render_base_prompt
from app.generation.records import Generation
from app.lens.errors import LensError
from app.lens.models import TokenShiftAnalysis
from app.lens.shift import ShiftAnalysis
from app.runs.models import PromptItem, Run, RunItem


@dataclass(frozen=True)
class Answer:
    """What scoring one run answer needs, read in one short session."""

    generation_id: int
    chat: ModelConfig
    fmt: BaseFormat
    context: BasePrompt
    token_ids: list[int]
    chat_logprobs: list[float | None] | None


async def load_answer(
    session: AsyncSession,
    models: ModelsFile,
    http: httpx.AsyncClient,
    settings: Settings,
    generation_id: int,
) -> Answer:
    """The answer's model, the run item's prompt in the run's base format, and its token ids
    (as generated; else the chat tokenizer's ids for its text)."""
    row = (
        await session.execute(
            select(Generation, Run.base_format, PromptItem.prompt, PromptItem.system)
            .join(RunItem, RunItem.id == Generation.run_item_id)
            .join(Run, Run.id == RunItem.run_id)
            .join(PromptItem, PromptItem.id == RunItem.prompt_item_id)
            .where(Generation.id == generation_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no run answer {generation_id}")
    generation, base_format, prompt, system = row
    chat = models.get(generation.model_name)
    if chat is None:
        raise Conflict(f"model {generation.model_name!r} is no longer configured")
    if not generation.text:
        raise LensError("the answer is empty: there is nothing to analyse")
    fmt = BaseFormat(base_format)
    # A run item is a one-turn conversation: its prompt (and system prompt), no history.
    context = render_base_prompt(fmt, prompt, [], system, settings.urial_file)
    if generation.tokens and all(t.get("token_id") is not None for t in generation.tokens):
        tokens = [TokenInfo.from_json(t) for t in generation.tokens]
        ids = [t.token_id for t in tokens if t.token_id is not None]
        logprobs: list[float | None] | None = [t.logprob for t in tokens]
    else:
        tokenized = await tokenize_text(http, chat, generation.text, add_special_tokens=False)
        ids, logprobs = tokenized.ids, None
    return Answer(generation.id, chat, fmt, context, ids, logprobs)


async def store_analysis(
    session: AsyncSession, answer: Answer, base: ModelConfig, result: ShiftAnalysis
) -> TokenShiftAnalysis:
    """Store the result, replacing an earlier analysis of the same answer."""
    await session.execute(
        delete(TokenShiftAnalysis).where(TokenShiftAnalysis.generation_id == answer.generation_id)
    )
    analysis = TokenShiftAnalysis(
        generation_id=answer.generation_id,
        base_model=base.name,
        base_served_model=base.model,
        base_format=answer.fmt.value,
        context_text=answer.context.text,
        total_tokens=result.total,
        shifted_ratio=result.shifted_ratio,
        marginal_ratio=result.marginal_ratio,
        analysis=result.to_json(),
        elapsed_ms=None if result.elapsed_seconds is None else result.elapsed_seconds * 1000,
        requests=result.requests,
    )
    session.add(analysis)
    await session.flush()
    return analysis

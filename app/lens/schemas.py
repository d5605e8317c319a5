"""Request and response bodies of the token-lens JSON API."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.comparisons.schemas import GenerationOut, generation_out
from app.generation.logprobs import TokenInfo
from app.lens.models import TokenShiftAnalysis
from app.lens.prefix import DEFAULT_PREFIX_TOKENS, MAX_PREFIX_TOKENS
from app.lens.service import LensTarget
from app.lens.shift import DEFAULT_TOP_K, MAX_TOP_K, Shift, ShiftAnalysis
from app.text import CleanText

ModelName = Annotated[str, Field(min_length=1, max_length=64), CleanText]


class TokenShiftInput(BaseModel):
    """Which base model scores the answer, and how many of its top tokens to read."""

    model_config = ConfigDict(extra="forbid")

    base_model: ModelName | None = Field(
        default=None,
        description="a configured base model; default: the conversation's base model, else "
        "the first one configured",
    )
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] = DEFAULT_TOP_K


class PrefixInput(BaseModel):
    """How many of the chat answer's first tokens the base model continues from."""

    model_config = ConfigDict(extra="forbid")

    k: Annotated[int, Field(ge=0, le=MAX_PREFIX_TOKENS)] = Field(
        default=DEFAULT_PREFIX_TOKENS,
        description="tokens of the chat answer to keep (at most its length)",
    )
    base_model: ModelName | None = None


class AlternativeOut(BaseModel):
    """A token the model could have chosen at a position."""

    token: str
    logprob: float
    probability: float


class TokenOut(BaseModel):
    """One generated token with the model's own probability and its top alternatives."""

    position: int
    token: str
    token_id: int | None
    logprob: float | None
    probability: float | None
    top: list[AlternativeOut]


class ShiftedTokenOut(BaseModel):
    """One answer token under the base model."""

    position: int
    token: str
    token_id: int
    chat_logprob: float | None = Field(description="the chat model's own logprob")
    rank: int = Field(description="the base model's rank of this token (1 = its first choice)")
    logprob: float = Field(description="the base model's logprob of this token")
    shift: Shift
    base_top_token: str = Field(description="what the base model would have said instead")
    base_top_token_id: int
    base_top_logprob: float


class ShiftCounts(BaseModel):
    """Answer tokens per class."""

    unshifted: int
    marginal: int
    shifted: int


class TokenShiftOut(BaseModel):
    """A stored token-shift analysis of one chat answer."""

    generation_id: int
    base_model: str
    base_served_model: str
    base_format: str
    top_k: int
    context_tokens: int = Field(description="tokens before the answer in the scored prompt")
    context_text: str
    total_tokens: int
    counts: ShiftCounts
    shifted_ratio: float
    marginal_ratio: float
    unshifted_ratio: float
    tokens: list[ShiftedTokenOut]
    shifted: list[ShiftedTokenOut] = Field(description="the shifted tokens, in answer order")
    elapsed_ms: float | None
    requests: int | None = Field(description="HTTP requests the analysis made, all servers")
    created_at: datetime


class RenderedPromptOut(BaseModel):
    """The exact string a model saw after its template was applied, and its token count."""

    generation_id: int
    kind: str = Field(description="the model's kind: chat (template applied) or base (raw text)")
    text: str
    token_count: int


class GenerationDetailOut(GenerationOut):
    """A generation with its tokens, its token-shift analysis and its prefix continuations."""

    conversation_id: str
    turn: int
    tokens: list[TokenOut] | None = Field(description="null when the server sent no logprobs")
    token_shift: TokenShiftOut | None
    continuations: list[GenerationOut]


def _probability(logprob: float) -> float:
    return math.exp(logprob)


def tokens_out(tokens: list[TokenInfo]) -> list[TokenOut]:
    """The token view as the API shows it."""
    return [
        TokenOut(
            position=position,
            token=token.token,
            token_id=token.token_id,
            logprob=token.logprob,
            probability=token.probability,
            top=[
                AlternativeOut(token=text, logprob=value, probability=_probability(value))
                for text, value in token.top
            ],
        )
        for position, token in enumerate(tokens)
    ]


def _shifted_token(token: dict[str, Any]) -> ShiftedTokenOut:
    return ShiftedTokenOut(
        position=token["position"],
        token=token["token"],
        token_id=token["token_id"],
        chat_logprob=token["chat_logprob"],
        rank=token["rank"],
        logprob=token["logprob"],
        shift=token["shift"],
        base_top_token=token["top_token"],
        base_top_token_id=token["top_token_id"],
        base_top_logprob=token["top_logprob"],
    )


def token_shift_out(stored: TokenShiftAnalysis) -> TokenShiftOut:
    """A stored analysis as the API shows it (classes and ratios recomputed from the ranks)."""
    analysis = ShiftAnalysis.from_json(stored.analysis)
    tokens = [_shifted_token(token.to_json()) for token in analysis.tokens]
    counts = analysis.counts
    return TokenShiftOut(
        generation_id=stored.generation_id,
        base_model=stored.base_model,
        base_served_model=stored.base_served_model,
        base_format=stored.base_format,
        top_k=analysis.top_k,
        context_tokens=analysis.context_tokens,
        context_text=stored.context_text,
        total_tokens=stored.total_tokens,
        counts=ShiftCounts(
            unshifted=counts[Shift.UNSHIFTED],
            marginal=counts[Shift.MARGINAL],
            shifted=counts[Shift.SHIFTED],
        ),
        shifted_ratio=stored.shifted_ratio,
        marginal_ratio=stored.marginal_ratio,
        unshifted_ratio=analysis.unshifted_ratio,
        tokens=tokens,
        shifted=[token for token in tokens if token.shift is Shift.SHIFTED],
        elapsed_ms=stored.elapsed_ms,
        requests=stored.requests,
        created_at=stored.created_at,
    )


def generation_detail_out(target: LensTarget) -> GenerationDetailOut:
    """A generation with its tokens, analysis and continuations, as the API shows it."""
    generation = target.generation
    tokens = (
        None
        if generation.tokens is None
        else tokens_out([TokenInfo.from_json(token) for token in generation.tokens])
    )
    analysis = target.analysis
    ratio = None if analysis is None else analysis.shifted_ratio
    summary = generation_out(generation, ratio, label=target.label, position=target.position)
    return GenerationDetailOut(
        **summary.model_dump(),
        conversation_id=target.turn.conversation_id,
        turn=target.turn.number,
        tokens=tokens,
        token_shift=None if analysis is None else token_shift_out(analysis),
        continuations=[generation_out(g) for g in target.turn.continuations_of(generation.id)],
    )

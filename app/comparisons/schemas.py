"""Request and response bodies of the JSON API (also used to validate the HTML forms)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.comparisons.models import Generation, Winner
from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat
from app.text import CleanText, ValidText

# Refuse NUL (no database text column stores it) and lone surrogates (not UTF-8).
NoNul = CleanText
# Hard caps; Settings may set tighter prompt limits, checked in the service.
PromptText = Annotated[str, StringConstraints(min_length=1, max_length=100_000), NoNul]
RaterName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NoNul
]
Score = Annotated[int, Field(strict=True, ge=1, le=5)]  # JSON true, "4", 4.0 are not scores


class TurnInput(BaseModel):
    """One prompt to send to both models."""

    model_config = ConfigDict(extra="forbid")

    prompt: PromptText
    params: SamplingParams = SamplingParams()


class ComparisonInput(TurnInput):
    """Start a conversation: the first prompt, and optionally which models and how."""

    system: Annotated[str, StringConstraints(max_length=100_000), NoNul] | None = None
    models: Annotated[list[ValidText], Field(min_length=2, max_length=2)] | None = Field(
        default=None, description="[name_a, name_b]; default: first base and first chat model"
    )
    base_format: BaseFormat = BaseFormat.RAW


class VoteInput(BaseModel):
    """A verdict on one turn; the same rater voting again on the same turn overwrites it."""

    model_config = ConfigDict(extra="forbid")

    winner: Winner
    rater: RaterName
    turn: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="turn number; default: the latest turn"
    )
    score_a: Score | None = None
    score_b: Score | None = None
    comment: Annotated[str, StringConstraints(max_length=100_000), NoNul] | None = None


class ModelOut(BaseModel):
    """A configured model, without secrets."""

    name: str
    kind: str
    model: str
    url: str | None
    revision: str | None
    description: str | None


class GenerationOut(BaseModel):
    """One side's answer with what it was sent and how it went."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    side: str
    model_name: str
    model_kind: str
    served_model: str
    model_revision: str | None
    endpoint: str
    prompt_format: str
    prompt_text: str | None
    messages: list[dict[str, str]] | None
    params: dict[str, Any]
    seed: int | None
    status: str
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: float | None
    total_ms: float | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    prefix_of_id: int | None = Field(
        default=None, description="for a prefix continuation: the answer it continues"
    )
    prefix_tokens: int | None = Field(
        default=None, description="for a prefix continuation: how many of its tokens it kept"
    )
    shifted_ratio: float | None = Field(
        default=None, description="share of shifted tokens (token lens); null if not analysed"
    )


def generation_out(generation: Generation) -> GenerationOut:
    """A generation as the API shows it, with its token-shift ratio when it has been analysed."""
    out = GenerationOut.model_validate(generation)
    analysis = generation.token_shift
    out.shifted_ratio = None if analysis is None else analysis.shifted_ratio
    return out


class VoteOut(BaseModel):
    """A stored vote."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    turn: int
    rater: str
    winner: str
    score_a: int | None
    score_b: int | None
    comment: str | None
    generation_a_id: int
    generation_b_id: int
    created_at: datetime
    updated_at: datetime


class TurnOut(BaseModel):
    """A turn: the prompt, the shared settings, both current answers and the votes."""

    id: int
    number: int
    prompt: str
    params: dict[str, Any]
    a: GenerationOut | None
    b: GenerationOut | None
    votes: list[VoteOut]
    continuations: list[GenerationOut] = Field(
        default=[], description="base-model continuations of an answer's first tokens"
    )


class ConversationOut(BaseModel):
    """A whole conversation as stored."""

    id: str
    url: str
    created_at: datetime
    title: str
    system: str | None
    base_format: str
    model_a: str
    kind_a: str
    model_b: str
    kind_b: str
    turns: list[TurnOut]

"""Request and response bodies of the JSON API (also used to validate the HTML forms)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.comparisons.models import MAX_MODELS, MIN_MODELS, Winner
from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat
from app.generation.records import Generation
from app.text import CleanText, ValidText

# Refuse NUL (no database text column stores it) and lone surrogates (not UTF-8).
NoNul = CleanText
# Hard caps; Settings may set tighter prompt limits, checked in the service.
PromptText = Annotated[str, StringConstraints(min_length=1, max_length=100_000), NoNul]
RaterName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NoNul
]
Score = Annotated[int, Field(ge=1, le=5, strict=True)]
SlotName = Literal["a", "b", "c", "d"]
ModelNames = Annotated[list[ValidText], Field(min_length=MIN_MODELS, max_length=MAX_MODELS)]


class TurnInput(BaseModel):
    """One prompt to send to both models."""

    model_config = ConfigDict(extra="forbid")

    prompt: PromptText
    params: SamplingParams = SamplingParams()


class ComparisonInput(TurnInput):
    """Start a conversation: the first prompt, and optionally which models and how."""

    system: Annotated[str, StringConstraints(max_length=100_000), NoNul] | None = None
    models: ModelNames | None = Field(
        default=None,
        description="2 to 4 model names, one column each (slots a, b, c, d in this order; "
        "shuffled when blind); default: the first base and the first chat model",
    )
    base_format: BaseFormat = BaseFormat.RAW
    blind: bool = Field(
        default=False,
        description="blind arena: the models take the columns in a random order and are shown "
        "as Model 1, 2, ... with no name, kind or served name until the rater has judged",
    )


class VoteInput(BaseModel):
    """A judgement of one turn's answers: `winner` (two answers), or `ranking`, or
    `all_bad`; the same rater judging the same turn again replaces the earlier judgement."""

    model_config = ConfigDict(extra="forbid")

    winner: Winner | None = Field(
        default=None, description="two answers only: a, b, tie or both_bad"
    )
    ranking: (
        Annotated[
            list[Annotated[list[SlotName], Field(min_length=1)]],
            Field(min_length=1, max_length=MAX_MODELS),
        ]
        | None
    ) = Field(
        default=None,
        description="groups of slots, best first; a group holds equal answers, e.g. "
        '[["c"], ["a", "b"]]; every answer exactly once',
    )
    all_bad: bool = Field(default=False, description="every answer is bad")
    rater: RaterName | None = Field(
        default=None,
        description="who judges; required in local mode, ignored in team mode (where the "
        "signed-in account is the rater)",
    )
    turn: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = Field(
        default=None, description="turn number; default: the latest turn"
    )
    scores: dict[SlotName, Score] | None = Field(
        default=None, description="optional 1-5 score per answer, by slot"
    )
    score_a: Score | None = Field(default=None, description="same as scores.a")
    score_b: Score | None = Field(default=None, description="same as scores.b")
    comment: Annotated[str, StringConstraints(max_length=100_000), NoNul] | None = None
    generation_ids: dict[SlotName, Annotated[int, Field(strict=True, ge=1)]] | None = Field(
        default=None,
        description="the answers the rater saw, by slot; if any was regenerated since, 409",
    )

    @model_validator(mode="after")
    def _one_verdict(self) -> VoteInput:
        given = [self.winner is not None, self.ranking is not None, self.all_bad]
        if sum(given) != 1:
            raise ValueError("give exactly one of `winner`, `ranking` or `all_bad: true`")
        return self

    def seen_ids(self) -> dict[str, int] | None:
        """The answers the rater saw, by slot (None when not said)."""
        if self.generation_ids is None:
            return None
        return {str(slot): gid for slot, gid in self.generation_ids.items()}

    def all_scores(self) -> dict[str, int]:
        """Scores by slot, the legacy score_a/score_b included."""
        scores: dict[str, int] = {str(k): v for k, v in (self.scores or {}).items()}
        for slot, score in (("a", self.score_a), ("b", self.score_b)):
            if score is not None:
                scores[slot] = score
        return scores


class GenerationOut(BaseModel):
    """One side's answer with what it was sent and how it went."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    slot: str = Field(description="the column: a, b, c or d (p: a prefix continuation)")
    side: str = Field(description="same as slot (kept for older clients)")
    label: str = Field(default="", description="the column's display name")
    position: int | None = Field(default=None, description="where the column is shown, from 0")
    model_name: str | None = Field(description="null while a blind comparison is unjudged")
    model_kind: str | None
    served_model: str | None
    model_revision: str | None
    endpoint: str | None
    prompt_format: str | None
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


# What would tell a blind rater which model wrote an answer.
IDENTIFYING_FIELDS = (
    "model_name", "model_kind", "served_model", "model_revision", "endpoint", "prompt_format",
    "prompt_text", "messages", "prompt_tokens",
)  # fmt: skip


def generation_out(
    generation: Generation,
    shifted_ratio: float | None = None,
    *,
    label: str = "",
    position: int | None = None,
    revealed: bool = True,
) -> GenerationOut:
    """A generation as the API shows it; hidden fields are null until a blind turn is judged."""
    values = {
        name: getattr(generation, name)
        for name in GenerationOut.model_fields
        if hasattr(generation, name) and name not in ("side", "label", "position")
    }
    values.update(side=generation.slot, label=label, position=position)
    if not revealed:
        values.update(dict.fromkeys(IDENTIFYING_FIELDS))
        # A base model's request carries its format's stop strings: that would tell.
        values["params"] = {}
        if values.get("error"):
            values["error"] = "this model failed to answer (details show once you have judged)"
    out = GenerationOut.model_validate(values)
    out.shifted_ratio = shifted_ratio if revealed else None
    return out


class VoteOut(BaseModel):
    """A stored judgement: the ranking (or all bad), scores, and the exact answers judged."""

    id: int
    turn: int
    rater: str
    winner: str | None = Field(description="two answers: a, b, tie or both_bad; else null")
    ranking: list[list[str]] | None = Field(description="groups of slots, best first")
    all_bad: bool
    scores: dict[str, int]
    score_a: int | None
    score_b: int | None
    comment: str | None
    generation_ids: dict[str, int] = Field(description="the judged answers, by slot")
    positions: dict[str, int] = Field(description="where each judged answer was shown")
    generation_a_id: int | None
    generation_b_id: int | None
    blind: bool = Field(description="judged without knowing which model wrote which answer")
    created_at: datetime
    updated_at: datetime


class ParticipantOut(BaseModel):
    """A model in a comparison; name and kind are null while a blind comparison is unjudged."""

    slot: str
    position: int
    label: str
    name: str | None
    kind: str | None


class TurnOut(BaseModel):
    """A turn: the prompt, the shared settings, both current answers and the votes."""

    id: int
    number: int
    prompt: str
    params: dict[str, Any]
    generations: list[GenerationOut] = Field(description="the current answers, in column order")
    a: GenerationOut | None = Field(description="slot a's answer (kept for older clients)")
    b: GenerationOut | None = Field(description="slot b's answer (kept for older clients)")
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
    blind: bool
    revealed: bool = Field(description="false while names are hidden from this rater")
    models: list[ParticipantOut] = Field(description="one per column, in column order")
    model_a: str | None
    kind_a: str | None
    model_b: str | None
    kind_b: str | None
    turns: list[TurnOut]

"""Request and response bodies of the annotation queue's JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.annotation.models import MAX_GUIDELINES, MAX_OVERLAP, MIN_OVERLAP
from app.comparisons.schemas import RaterName
from app.text import CleanText

Guidelines = Annotated[str, StringConstraints(max_length=MAX_GUIDELINES), CleanText]


class TaskInput(BaseModel):
    """Open a run as a rating task (or change its settings)."""

    model_config = ConfigDict(extra="forbid")

    overlap: int = Field(
        default=1, ge=MIN_OVERLAP, le=MAX_OVERLAP, strict=True,
        description="judgements wanted per item, each from a different rater",
    )  # fmt: skip
    guidelines: Guidelines = Field(default="", description="shown above the queue")
    reveal_names_after_judging: bool = Field(
        default=False, description="show which model wrote which answer once a rater judged it"
    )
    blind: bool = Field(default=True, description="hide the model names while judging")
    random_positions: bool = Field(
        default=True, description="show the answers in a random order per rater and item"
    )


class SkipInput(BaseModel):
    """Skip an item: the rater will not be given it again."""

    model_config = ConfigDict(extra="forbid")

    rater: RaterName


class RaterProgressOut(BaseModel):
    """One rater's work in a task."""

    rater: str
    judged: int
    skipped: int


class TaskOut(BaseModel):
    """A rating task's settings and progress."""

    run_id: int
    overlap: int
    guidelines: str
    reveal_names_after_judging: bool
    blind: bool
    random_positions: bool
    items: int = Field(description="items in the run")
    ready: int = Field(description="items whose every answer is done (only these are rated)")
    complete: int = Field(description="items with all the judgements they want")
    judgements: int
    wanted: int = Field(description="items x overlap")
    raters: list[RaterProgressOut]
    queue_url: str


class AnswerOut(BaseModel):
    """One answer as the rater is shown it."""

    answer: str = Field(description="a-d: the answer's place in this rater's order")
    number: int = Field(description="1-4, as shown (Model 1, ...)")
    label: str
    generation_id: int | None = Field(
        description="null in a blind task: a run makes an item's answers in model order, so "
        "their ids would tell the models apart"
    )
    text: str
    model: str | None = Field(description="null while blind")


class QueueItemOut(BaseModel):
    """An item to judge, with its answers in the rater's order."""

    run_item_id: int
    item: str = Field(description="the item's id within its set")
    prompt: str
    system: str | None
    answers: list[AnswerOut]
    expires_at: datetime = Field(description="the item is held for this rater until then")


class NextOut(BaseModel):
    """The rater's next item, or null when nothing is left for them."""

    rater: str
    item: QueueItemOut | None
    judged: int = Field(description="items this rater has judged in the task")


class JudgedOut(BaseModel):
    """A queue judgement as stored; a-d are the answers in the order the rater saw them."""

    run_item_id: int
    rater: str
    ranking: list[list[str]] | None = Field(description="groups of answers (a-d), best first")
    all_bad: bool
    blind: bool
    item_complete: bool = Field(description="the item has all the judgements it wants")
    models: dict[str, str] | None = Field(
        description="which model wrote each answer (a-d), when the task reveals names"
    )


class SkippedOut(BaseModel):
    """A skipped item."""

    run_item_id: int
    rater: str
    skipped: bool

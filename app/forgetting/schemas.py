"""Shapes of the forgetting report (JSON API, page and CSV)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ModelAccuracy(BaseModel):
    """One model's accuracy on the scored items, with its 95% bootstrap interval."""

    model: str
    slot: str
    correct: int
    scored: int
    accuracy: float | None = Field(description="None when no item could be scored")
    ci_low: float | None
    ci_high: float | None


class Difference(BaseModel):
    """Accuracy of the tuned model minus the original's, with its paired bootstrap interval."""

    estimate: float
    ci_low: float
    ci_high: float
    significantly_worse: bool = Field(description="the interval's upper bound is below 0")
    significantly_better: bool = Field(description="the interval's lower bound is above 0")


class ItemChange(BaseModel):
    """An item the tuned model forgot (or learned), with a link to the answers side by side."""

    item: str
    prompt: str
    reference: dict[str, str]
    original_answer: str
    tuned_answer: str
    url: str


class ItemCounts(BaseModel):
    """How the run's items were used."""

    total: int
    scored: int = Field(description="with a reference and a finished answer from every model")
    without_reference: int = Field(description="ignored: the item has no reference")
    unanswered: int = Field(
        description="left out: with a reference, but some model's answer failed or is pending"
    )


class Pair(BaseModel):
    """The original and the tuned model, and how they were chosen."""

    original: str
    tuned: str
    chosen_by: Literal["adapter", "request"]


class Report(BaseModel):
    """The forgetting check of one run."""

    run: int
    status: str
    prompt_set: str
    final: bool = Field(description="the run has finished: the figures will not change")
    seed: int
    resamples: int
    level: float
    items: ItemCounts
    models: list[ModelAccuracy]
    pair: Pair | None
    difference: Difference | None
    forgot: list[ItemChange]
    learned: list[ItemChange]

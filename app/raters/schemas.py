"""The raters page's JSON shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.leaderboard.filters import Blind


class RaterOut(BaseModel):
    """One rater's activity and how often they side with the other raters."""

    rater: str
    judgements: int
    median_seconds: float | None = Field(
        description="Median gap between this rater's consecutive judgements, gaps over "
        "`settings.gap_limit_seconds` (breaks) left out; null with no such gap"
    )
    timed_judgements: int = Field(description="Gaps behind median_seconds")
    tie_share: float = Field(description="Share of judgements with two answers ranked equal")
    both_bad_share: float = Field(description="Share of judgements marking all answers bad")
    majority_agreement: float | None = Field(
        description="Share of verdicts equal to the majority verdict of the other raters, on "
        "items with at least 2 other raters and a majority among them; null with none"
    )
    majority_items: int = Field(description="Items behind majority_agreement")


class FigureOut(BaseModel):
    """An agreement figure; null (with a note) when there is not enough data to define it."""

    value: float | None
    items: int = Field(description="Shared items (judged by every rater compared) behind it")
    note: str | None = None


class FleissOut(FigureOut):
    """Fleiss' kappa, over items that all have the same number of raters."""

    raters_per_item: int | None = None


class PairOut(BaseModel):
    """Cohen's kappa between two raters on the items they both judged."""

    rater_a: str
    rater_b: str
    kappa: FigureOut


class RatersSettings(BaseModel):
    """The filters and the definitions the figures follow."""

    blind: Blind
    since: datetime | None
    until: datetime | None
    gap_limit_seconds: float
    verdict: str = (
        "two answers: a, b, tie or both_bad; more: the slots ranked first joined by '+' "
        "(tie when every answer is, both_bad when all are bad)"
    )
    item: str = "a turn and the exact answers judged (a regenerated answer is a new item)"


class RatersOut(BaseModel):
    """Raters (most judgements first) and agreement on items judged by more than one rater."""

    raters: list[RaterOut]
    judgements: int
    shared_items: int = Field(description="Items judged by more than one rater")
    cohen: list[PairOut] = Field(description="One entry per pair of raters with a shared item")
    fleiss: FleissOut
    krippendorff: FigureOut
    settings: RatersSettings

"""The leaderboard's JSON shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.leaderboard.filters import Blind
from app.leaderboard.pairs import BothBad


class RatedModel(BaseModel):
    """One model: rating on the Elo-like scale (mean 1000), its 95% interval, rank, pairs."""

    name: str
    rating: float
    ci_low: float
    ci_high: float
    rank: int = Field(description="1 + the number of models whose ci_low is above our ci_high")
    pairs: int = Field(description="Rated pairs this model took part in")


class BoardSettings(BaseModel):
    """How the board was computed: filters, both-bad handling, bootstrap and scale."""

    blind: Blind
    rater: str | None
    since: datetime | None
    until: datetime | None
    both_bad: BothBad
    rounds: int
    seed: int
    method: str = "Bradley-Terry maximum likelihood (SciPy L-BFGS-B), ties = half a win"
    scale: str = "R = 1000 + 400*log10(odds) relative to the mean: the mean rating is 1000"
    interval: str = "95% percentile bootstrap over pairs"


class LeaderboardOut(BaseModel):
    """Models best first; win_rates[i][j] is the share of pairs models[i] won against
    models[j] (ties half; null with no pairs); pair_counts the same matrix of pair counts."""

    models: list[RatedModel]
    win_rates: list[list[float | None]]
    pair_counts: list[list[int]]
    pairs: int
    settings: BoardSettings

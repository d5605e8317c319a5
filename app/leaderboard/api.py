"""GET /api/v1/leaderboard: Bradley-Terry ratings with bootstrap intervals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.leaderboard.filters import LeaderboardFilters
from app.leaderboard.fit import ROUNDS, SEED
from app.leaderboard.pairs import BothBad
from app.leaderboard.schemas import LeaderboardOut
from app.leaderboard.service import leaderboard
from app.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["leaderboard"])

BothBadQuery = Annotated[
    BothBad, Query(description="Count a both-bad pair as a `tie` (default) or `exclude` it")
]
RoundsQuery = Annotated[int, Query(ge=10, le=1000, description="Bootstrap rounds")]
SeedQuery = Annotated[int, Query(ge=0, le=2**31 - 1, description="Bootstrap seed")]


@router.get("/leaderboard", response_model=LeaderboardOut)
async def get_leaderboard(
    session: SessionDep,
    filters: LeaderboardFilters,
    both_bad: BothBadQuery = BothBad.TIE,
    rounds: RoundsQuery = ROUNDS,
    seed: SeedQuery = SEED,
) -> LeaderboardOut:
    """Models best first with rating (mean 1000), 95% bootstrap interval, rank and pairs, and
    the pairwise win-rate matrix, over the rated pairs the filters select."""
    return await leaderboard(session, filters, both_bad, rounds, seed)

"""GET /leaderboard: the ratings table, the SVG plots and the download menu."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.leaderboard.api import BothBadQuery, RoundsQuery, SeedQuery
from app.leaderboard.filters import LeaderboardFilters
from app.leaderboard.fit import ROUNDS, SEED
from app.leaderboard.pairs import BothBad
from app.leaderboard.plot import plot
from app.leaderboard.service import leaderboard
from app.web.deps import SessionDep, State
from app.web.pages import render

router = APIRouter(include_in_schema=False)
EXPORTS = ("dpo", "kto", "reward")


@router.get("/leaderboard", response_class=HTMLResponse)
async def leaderboard_page(
    request: Request,
    state: State,
    session: SessionDep,
    filters: LeaderboardFilters,
    both_bad: BothBadQuery = BothBad.TIE,
    rounds: RoundsQuery = ROUNDS,
    seed: SeedQuery = SEED,
) -> HTMLResponse:
    """The board for the filters in the query string, drawn on the server."""
    board = await leaderboard(session, filters, both_bad, rounds, seed)
    query = urlencode(filters.query())
    downloads = [
        (name, form, extension, f"/api/v1/exports/{name}.{extension}?{query}"
         + ("&form=conversational" if form == "conversational" else ""))
        for name in EXPORTS
        for form in ("standard", "conversational")
        for extension in ("jsonl", "parquet")
    ]  # fmt: skip
    context = {
        "board": board,
        "plot": plot(board) if board.models else None,
        "filters": filters,
        "both_bad": both_bad.value,
        "downloads": downloads,
    }
    return render(request, state, "leaderboard.html", context)

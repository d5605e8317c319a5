"""Compute the leaderboard: count pairs in SQL, fit off the event loop."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial

from anyio import to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from app.leaderboard.filters import Filters
from app.leaderboard.fit import fit
from app.leaderboard.pairs import BothBad, count_pairs
from app.leaderboard.schemas import BoardSettings, LeaderboardOut, RatedModel


async def leaderboard(
    session: AsyncSession, filters: Filters, both_bad: BothBad, rounds: int, seed: int
) -> LeaderboardOut:
    """The board for these filters and settings."""
    counts = await count_pairs(session, filters)
    board = await to_thread.run_sync(
        partial(fit, counts, both_bad=both_bad, rounds=rounds, seed=seed)
    )
    return LeaderboardOut(
        models=[RatedModel(**asdict(m)) for m in board.models],
        win_rates=board.win_rates,
        pair_counts=board.pair_counts,
        pairs=board.pairs,
        settings=BoardSettings(
            blind=filters.blind,
            rater=filters.rater,
            since=filters.since,
            until=filters.until,
            both_bad=both_bad,
            rounds=rounds,
            seed=seed,
        ),
    )

"""Compute the raters' figures: read the judgements in SQL, count and agree off the event loop."""

from __future__ import annotations

from dataclasses import asdict

from anyio import to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from app.leaderboard.filters import Filters
from app.raters.activity import GAP_LIMIT, rater_figures, verdicts_by_item
from app.raters.agreement import Figure, cohen_pairs, fleiss, krippendorff_alpha
from app.raters.queries import Judged, judged
from app.raters.schemas import (
    FigureOut,
    FleissOut,
    PairOut,
    RaterOut,
    RatersOut,
    RatersSettings,
)


def _figure(figure: Figure) -> FigureOut:
    """A figure as JSON."""
    return FigureOut(value=figure.value, items=figure.items, note=figure.note)


def _compute(rows: list[Judged], filters: Filters) -> RatersOut:
    """Everything on the page from the judgements (CPU work, and the first call imports the
    statistics libraries)."""
    items = verdicts_by_item(rows)
    shared = {item: verdicts for item, verdicts in items.items() if len(verdicts) >= 2}
    board = fleiss(shared)
    return RatersOut(
        raters=[RaterOut(**asdict(f)) for f in rater_figures(rows)],
        judgements=len(rows),
        shared_items=len(shared),
        cohen=[
            PairOut(rater_a=p.rater_a, rater_b=p.rater_b, kappa=_figure(p.kappa))
            for p in cohen_pairs(shared)
        ],
        fleiss=FleissOut(
            value=board.value,
            items=board.items,
            note=board.note,
            raters_per_item=board.raters_per_item,
        ),
        krippendorff=_figure(krippendorff_alpha(shared)),
        settings=RatersSettings(
            blind=filters.blind,
            since=filters.since,
            until=filters.until,
            gap_limit_seconds=GAP_LIMIT,
        ),
    )


async def raters(session: AsyncSession, filters: Filters) -> RatersOut:
    """The raters' figures for these filters (the rater filter is not used: agreement needs
    everyone)."""
    rows = await judged(session, filters)
    return await to_thread.run_sync(_compute, rows, filters)

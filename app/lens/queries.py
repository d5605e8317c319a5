"""How lens results are read."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.lens.models import TokenShiftAnalysis


async def analysis_of(session: AsyncSession, generation_id: int) -> TokenShiftAnalysis | None:
    """The stored token-shift analysis of an answer, if any."""
    result: TokenShiftAnalysis | None = await session.scalar(
        select(TokenShiftAnalysis).where(TokenShiftAnalysis.generation_id == generation_id)
    )
    return result


async def analyses_of(
    session: AsyncSession, generation_ids: Iterable[int]
) -> dict[int, TokenShiftAnalysis]:
    """The stored analyses of these answers, by generation id."""
    ids = list(generation_ids)
    if not ids:
        return {}
    result = await session.scalars(
        select(TokenShiftAnalysis).where(TokenShiftAnalysis.generation_id.in_(ids))
    )
    return {analysis.generation_id: analysis for analysis in result}

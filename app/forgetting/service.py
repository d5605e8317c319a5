"""The forgetting check's use case: a run's report, scoring what is not scored yet."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import ModelsFile
from app.forgetting import report
from app.forgetting.schemas import Report
from app.forgetting.scoring import get_run, score_run
from app.runs.models import PromptSet


async def run_report(
    session: AsyncSession,
    registry: ModelsFile,
    run_id: int,
    original: str | None = None,
    tuned: str | None = None,
    seed: int = 0,
) -> Report:
    """Score the run's new answers (stored, committed), then build its report."""
    run = await get_run(session, run_id)
    pair = report.choose_pair(run, registry, original, tuned)
    scored = await score_run(session, run)
    name = await session.scalar(select(PromptSet.name).where(PromptSet.id == run.prompt_set_id))
    # The bootstrap is CPU work: keep the event loop free while it runs.
    return await asyncio.to_thread(report.build, scored, name or "", pair, seed)

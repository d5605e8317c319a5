"""Read-side of a run's token-shift analysis: its job, progress, failures and analyses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import ModelsFile
from app.errors import PlaygroundError
from app.generation.records import Generation
from app.lens.models import RunShiftFailure, RunShiftJob, TokenShiftAnalysis
from app.lens.runs.report import ModelReport, add_analysis
from app.lens.runs.schemas import JobStatus, RunShiftStatus, ShiftFailureOut
from app.lens.runs.targets import Target, check_startable, targets
from app.lens.shift import DEFAULT_TOP_K
from app.runs.models import PromptItem, Run, RunItem
from app.runs.queries import latest_ids

# Failures listed in a status (the count covers all of them).
MAX_LISTED_FAILURES = 200


async def job_of(session: AsyncSession, run_id: int) -> RunShiftJob | None:
    """The run's token-shift job, if it was ever started."""
    job: RunShiftJob | None = await session.scalar(
        select(RunShiftJob).where(RunShiftJob.run_id == run_id)
    )
    return job


async def analysed_bases(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    """The base model of each of these answers' stored analysis, by generation id."""
    found: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(TokenShiftAnalysis.generation_id, TokenShiftAnalysis.base_model).where(
                TokenShiftAnalysis.generation_id.in_(ids[start : start + 500])
            )
        )
        found.update({gid: base for gid, base in rows.all()})
    return found


def pending(found: list[Target], analysed: dict[int, str]) -> list[Target]:
    """The targets not yet analysed under their own base model (the job's work left)."""
    return [t for t in found if t.base is None or analysed.get(t.generation_id) != t.base.name]


async def status(
    session: AsyncSession, run: Run, models: ModelsFile, job: RunShiftJob | None, active: bool
) -> RunShiftStatus:
    """Answers analysed, failed and left, with the failures listed."""
    base = job.base_model if job is not None else None
    try:
        found = await targets(session, run, models, base)
        check_startable(run, models, found)
        problem = None
    except PlaygroundError as exc:
        found, problem = [], exc.message
    analysed = await analysed_bases(session, [t.generation_id for t in found])
    left = {t.generation_id for t in pending(found, analysed)}
    failures = await failures_of(session, job, left) if job is not None else []
    failed = len(failures)
    if job is None:
        state = JobStatus.NONE
    elif active or job.status == JobStatus.RUNNING:
        state = JobStatus.RUNNING
    else:
        state = JobStatus.DONE
    return RunShiftStatus(
        run_id=run.id,
        status=state,
        base=base,
        top_k=job.top_k if job is not None else DEFAULT_TOP_K,
        total=len(found),
        done=len(found) - len(left),
        failed=failed,
        pending=len(left) - failed,
        failures=failures[:MAX_LISTED_FAILURES],
        problem=problem,
    )


async def failures_of(
    session: AsyncSession, job: RunShiftJob, left: set[int]
) -> list[ShiftFailureOut]:
    """The job's failures among the answers still to analyse, in item order."""
    rows = await session.execute(
        select(RunShiftFailure, PromptItem.key, Generation.model_name)
        .join(Generation, Generation.id == RunShiftFailure.generation_id)
        .join(RunItem, RunItem.id == Generation.run_item_id)
        .join(PromptItem, PromptItem.id == RunItem.prompt_item_id)
        .where(RunShiftFailure.job_id == job.id)
        .order_by(RunItem.position, Generation.slot)
    )
    return [
        ShiftFailureOut(
            generation_id=failure.generation_id,
            item=key,
            model=model,
            base=failure.base_model,
            error=failure.error,
        )
        for failure, key, model in rows.all()
        if failure.generation_id in left
    ]


@dataclass(frozen=True)
class AnalysedAnswer:
    """A stored analysis of one of a run's answers, with its item and model."""

    item: str
    run_item_id: int
    generation_id: int
    model: str
    base: str
    analysis: dict[str, Any]


async def analysed_answers(
    session: AsyncSession, run: Run, offset: int, limit: int
) -> list[AnalysedAnswer]:
    """A page of the run's analysed answers (latest attempts only), in item and slot order."""
    rows = await session.execute(
        select(
            PromptItem.key,
            RunItem.id,
            Generation.id,
            Generation.model_name,
            TokenShiftAnalysis.base_model,
            TokenShiftAnalysis.analysis,
        )
        .join(Generation, Generation.id == TokenShiftAnalysis.generation_id)
        .join(RunItem, RunItem.id == Generation.run_item_id)
        .join(PromptItem, PromptItem.id == RunItem.prompt_item_id)
        .where(Generation.id.in_(latest_ids(run.id)))
        .order_by(RunItem.position, Generation.slot)
        .offset(offset)
        .limit(limit)
    )
    return [AnalysedAnswer(*row) for row in rows.all()]


async def report_of(session: AsyncSession, run: Run, batch: int = 200) -> list[ModelReport]:
    """The run's report: its analysed answers folded in, a batch at a time."""
    reports: dict[tuple[str, str], ModelReport] = {}
    offset = 0
    while rows := await analysed_answers(session, run, offset, batch):
        for answer in rows:
            key = (answer.model, answer.base)
            if key not in reports:
                reports[key] = ModelReport(answer.model, answer.base)
            add_analysis(reports[key], answer.analysis)
        offset += len(rows)
    return list(reports.values())

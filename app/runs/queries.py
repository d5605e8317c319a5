"""Read-side of runs: progress figures and the side-by-side results table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db import utcnow
from app.generation.records import Generation, GenerationStatus
from app.runs.models import PromptItem, PromptSet, Run, RunItem, RunStatus
from app.runs.schemas import RunProgress

# Throughput is measured over the answers that finished in this window.
RATE_WINDOW_SECONDS = 15.0
FAILED = (GenerationStatus.ERROR,)
RESULT_STATUSES = ("all", "done", "failed", "pending")


def runs_to_resume(owner: str | None) -> Select[tuple[int]]:
    """Runs left queued or running that no other live process drives: none of their answers
    is in flight in another process (a start's sweep has interrupted those of dead ones)."""
    driven_elsewhere = (
        select(RunItem.run_id)
        .join(Generation, Generation.run_item_id == RunItem.id)
        .where(Generation.status.in_((GenerationStatus.PENDING, GenerationStatus.RUNNING)))
        .where(Generation.owner.is_not(None))
    )
    if owner is not None:
        driven_elsewhere = driven_elsewhere.where(Generation.owner != owner)
    active = (RunStatus.QUEUED, RunStatus.RUNNING)
    return select(Run.id).where(Run.status.in_(active), Run.id.not_in(driven_elsewhere))


def latest_ids(run_id: int) -> Select[tuple[int]]:
    """The id of the latest attempt of every (item, model) answer of a run."""
    return (
        select(func.max(Generation.id))
        .join(RunItem, RunItem.id == Generation.run_item_id)
        .where(RunItem.run_id == run_id)
        .group_by(Generation.run_item_id, Generation.slot)
    )


async def progress(session: AsyncSession, run: Run) -> RunProgress:
    """Answers done, failed and running, throughput, and an estimate of the time left."""
    items = await session.scalar(select(func.count()).where(RunItem.run_id == run.id)) or 0
    set_name = await session.scalar(select(PromptSet.name).where(PromptSet.id == run.prompt_set_id))
    rows = await session.execute(
        select(Generation.status, func.count())
        .where(Generation.id.in_(latest_ids(run.id)))
        .group_by(Generation.status)
    )
    counts = {str(status): int(n) for status, n in rows.all()}
    done = counts.get(GenerationStatus.DONE, 0)
    failed = counts.get(GenerationStatus.ERROR, 0)
    running = counts.get(GenerationStatus.RUNNING, 0) + counts.get(GenerationStatus.PENDING, 0)
    total = int(items) * len(run.models)
    now = utcnow()
    if run.status == RunStatus.RUNNING and run.started_at is not None:
        window = min(RATE_WINDOW_SECONDS, max((now - run.started_at).total_seconds(), 0.001))
        since = now - timedelta(seconds=window)
    else:
        since = run.started_at or run.created_at
        end = run.finished_at or now
        window = max((end - since).total_seconds(), 0.001)
    tokens, answers = (
        await session.execute(
            select(func.coalesce(func.sum(Generation.completion_tokens), 0), func.count())
            .join(RunItem, RunItem.id == Generation.run_item_id)
            .where(
                RunItem.run_id == run.id,
                Generation.status == GenerationStatus.DONE,
                Generation.finished_at >= since,
            )
        )
    ).one()
    rate = float(tokens) / window if answers else None
    left = total - done - failed
    seconds_left = None
    if run.status == RunStatus.RUNNING and answers:
        seconds_left = left / (int(answers) / window)
    return RunProgress(
        id=run.id,
        status=run.status,
        prompt_set=set_name or "",
        models=run.models,
        total=total,
        done=done,
        failed=failed,
        running=running,
        tokens_per_second=None if rate is None else round(rate, 1),
        seconds_left=None if seconds_left is None else round(seconds_left, 1),
    )


@dataclass
class ResultRow:
    """One item of a run with its models' latest answers, in slot order."""

    position: int
    item: PromptItem
    answers: list[Generation | None] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether any answer failed."""
        return any(a is not None and a.status == GenerationStatus.ERROR for a in self.answers)


async def results(
    session: AsyncSession,
    run: Run,
    status: str = "all",
    search: str = "",
    offset: int = 0,
    limit: int | None = 200,
) -> list[ResultRow]:
    """The run's items with their answers side by side, filtered by status and text."""
    query = (
        select(RunItem)
        .join(PromptItem, PromptItem.id == RunItem.prompt_item_id)
        .where(RunItem.run_id == run.id)
        .options(selectinload(RunItem.prompt_item), selectinload(RunItem.generations))
        .order_by(RunItem.position)
    )
    if search.strip():
        needle = f"%{search.strip().lower()}%"
        answered = select(Generation.run_item_id).where(func.lower(Generation.text).like(needle))
        query = query.where(
            or_(
                func.lower(PromptItem.prompt).like(needle),
                func.lower(PromptItem.key).like(needle),
                RunItem.id.in_(answered),
            )
        )
    rows = []
    for run_item in await session.scalars(query):
        row = ResultRow(run_item.position, run_item.prompt_item)
        row.answers = [run_item.current(slot) for slot in run.slots]
        if _matches(row, status):
            rows.append(row)
    return rows[offset:] if limit is None else rows[offset : offset + limit]


def _matches(row: ResultRow, status: str) -> bool:
    if status == "failed":
        return row.failed
    if status == "done":
        return all(a is not None and a.status == GenerationStatus.DONE for a in row.answers)
    if status == "pending":
        return any(a is None or not a.finished for a in row.answers)
    return True


async def failures(session: AsyncSession, run: Run) -> list[dict[str, Any]]:
    """The failed answers of a run: item, model and error."""
    rows = await session.execute(
        select(PromptItem.key, Generation.model_name, Generation.error, Generation.id)
        .join(RunItem, RunItem.id == Generation.run_item_id)
        .join(PromptItem, PromptItem.id == RunItem.prompt_item_id)
        .where(Generation.id.in_(latest_ids(run.id)), Generation.status.in_(FAILED))
        .order_by(RunItem.position, Generation.slot)
    )
    return [
        {"item": key, "model": model, "error": error, "generation_id": gid}
        for key, model, error, gid in rows.all()
    ]

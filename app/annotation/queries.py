"""Read side of rating tasks: which items are ready, who judged what, and progress."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.annotation.models import Assignment, AssignmentState, RatingTask
from app.comparisons.models import Conversation, Judgement, Turn
from app.generation.records import Generation, GenerationStatus
from app.runs.models import Run, RunItem
from app.runs.queries import latest_ids


async def task_of(session: AsyncSession, run_id: int) -> RatingTask | None:
    """The rating task of a run, if it was opened for rating."""
    task: RatingTask | None = await session.scalar(
        select(RatingTask).where(RatingTask.run_id == run_id)
    )
    return task


async def ready_items(session: AsyncSession, run: Run) -> list[int]:
    """The run's items whose every answer is done, in set order: only those can be rated."""
    done = (
        select(Generation.run_item_id)
        .where(Generation.id.in_(latest_ids(run.id)), Generation.status == GenerationStatus.DONE)
        .group_by(Generation.run_item_id)
        .having(func.count() == len(run.models))
    )
    rows = await session.scalars(
        select(RunItem.id).where(RunItem.id.in_(done)).order_by(RunItem.position)
    )
    return list(rows)


async def judges_by_item(session: AsyncSession, run_id: int) -> dict[int, set[str]]:
    """Who has judged each of the run's rated items."""
    rows = await session.execute(
        select(Conversation.run_item_id, Judgement.rater)
        .join(Turn, Turn.conversation_id == Conversation.id)
        .join(Judgement, Judgement.turn_id == Turn.id)
        .join(RunItem, RunItem.id == Conversation.run_item_id)
        .where(RunItem.run_id == run_id)
    )
    judged: dict[int, set[str]] = {}
    for item_id, rater in rows.tuples():
        if item_id is not None:
            judged.setdefault(item_id, set()).add(rater)
    return judged


async def assignments(session: AsyncSession, task: RatingTask) -> list[Assignment]:
    """Every assignment of a task."""
    return list(await session.scalars(select(Assignment).where(Assignment.task_id == task.id)))


def active_leases(rows: list[Assignment], now: datetime) -> dict[int, set[str]]:
    """Raters holding an unexpired lease on each item."""
    leases: dict[int, set[str]] = {}
    for a in rows:
        if a.state == AssignmentState.OPEN and a.expires_at > now:
            leases.setdefault(a.run_item_id, set()).add(a.rater)
    return leases


@dataclass
class RaterProgress:
    """What one rater has done in a task."""

    rater: str
    judged: int = 0
    skipped: int = 0


@dataclass
class TaskProgress:
    """A task's figures: items ready, complete, judgements made and wanted, per rater."""

    items: int
    ready: int
    complete: int
    judgements: int
    wanted: int
    raters: list[RaterProgress] = field(default_factory=list)

    def of(self, rater: str | None) -> RaterProgress:
        """One rater's figures (zero if they have done nothing yet)."""
        return next((r for r in self.raters if r.rater == rater), RaterProgress(rater or ""))


async def progress(session: AsyncSession, task: RatingTask, run: Run) -> TaskProgress:
    """How far a task has got, overall and per rater."""
    total = await session.scalar(select(func.count()).where(RunItem.run_id == run.id)) or 0
    ready = await ready_items(session, run)
    judged = await judges_by_item(session, run.id)
    per_rater: Counter[str] = Counter(r for raters in judged.values() for r in raters)
    skipped = Counter(
        a.rater for a in await assignments(session, task) if a.state == AssignmentState.SKIPPED
    )
    names = sorted(set(per_rater) | set(skipped))
    return TaskProgress(
        items=int(total),
        ready=len(ready),
        complete=sum(1 for raters in judged.values() if len(raters) >= task.overlap),
        judgements=sum(per_rater.values()),
        wanted=int(total) * task.overlap,
        raters=[RaterProgress(n, per_rater[n], skipped[n]) for n in names],
    )

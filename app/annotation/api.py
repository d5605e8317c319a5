"""JSON API of the annotation queue: open a run for rating, get items, judge, skip."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.annotation.deps import ServiceDep, resolve_rater
from app.annotation.models import RatingTask
from app.annotation.queries import TaskProgress
from app.annotation.schemas import (
    JudgedOut,
    NextOut,
    RaterProgressOut,
    SkipInput,
    SkippedOut,
    TaskInput,
    TaskOut,
)
from app.comparisons.schemas import RaterName, VoteInput
from app.errors import InvalidInput
from app.web.guards import require_json

router = APIRouter(prefix="/api/v1", tags=["annotation queue"])
json_only = [Depends(require_json)]


def task_out(task: RatingTask, progress: TaskProgress) -> TaskOut:
    """A task's settings and progress as the API shows them."""
    return TaskOut(
        run_id=task.run_id,
        overlap=task.overlap,
        guidelines=task.guidelines,
        reveal_names_after_judging=task.reveal_names,
        blind=task.blind,
        random_positions=task.random_positions,
        items=progress.items,
        ready=progress.ready,
        complete=progress.complete,
        judgements=progress.judgements,
        wanted=progress.wanted,
        raters=[RaterProgressOut(rater=r.rater, judged=r.judged, skipped=r.skipped)
                for r in progress.raters],
        queue_url=f"/runs/{task.run_id}/queue",
    )  # fmt: skip


def _rater(request: Request, claimed: str | None) -> str:
    rater = resolve_rater(request, claimed)
    if rater is None:
        raise InvalidInput("name the rater")
    return rater


@router.post("/runs/{run_id}/task", response_model=TaskOut, dependencies=json_only)
async def open_task(run_id: int, data: TaskInput, service: ServiceDep) -> TaskOut:
    """Open a run as a rating task, or change its settings (overlap, guidelines, reveal)."""
    task, run = await service.open_task(run_id, data)
    return task_out(task, await service.progress(task, run))


@router.get("/runs/{run_id}/task", response_model=TaskOut)
async def get_task(run_id: int, service: ServiceDep) -> TaskOut:
    """A rating task's settings and progress, overall and per rater."""
    task, run = await service.task(run_id)
    return task_out(task, await service.progress(task, run))


@router.get("/runs/{run_id}/task/next", response_model=NextOut)
async def next_item(
    run_id: int,
    request: Request,
    service: ServiceDep,
    rater: Annotated[RaterName, Query(description="who is rating")],
) -> NextOut:
    """The rater's next item (held for them for 10 minutes); `item` is null when none is left.
    Answers are a-d in the order this rater is shown them."""
    name = _rater(request, rater)
    task, run = await service.task(run_id)
    item = await service.next_item(task, run, name)
    progress = await service.progress(task, run)
    return NextOut(rater=name, item=item, judged=progress.of(name).judged)


@router.post(
    "/runs/{run_id}/task/items/{run_item_id}/judgement",
    status_code=201,
    response_model=JudgedOut,
    dependencies=json_only,
)
async def judge(
    run_id: int, run_item_id: int, data: VoteInput, request: Request, service: ServiceDep
) -> JudgedOut:
    """Judge an item given to this rater, as a comparison vote: `winner` (two answers),
    `ranking` or `all_bad`, where a-d are the answers in the order the rater was shown them."""
    task, run = await service.task(run_id)
    return await service.judge(task, run, run_item_id, _rater(request, data.rater), data)


@router.post(
    "/runs/{run_id}/task/items/{run_item_id}/skip",
    response_model=SkippedOut,
    dependencies=json_only,
)
async def skip(
    run_id: int, run_item_id: int, data: SkipInput, request: Request, service: ServiceDep
) -> SkippedOut:
    """Skip an item given to this rater: it is not given to them again."""
    task, _ = await service.task(run_id)
    name = _rater(request, data.rater)
    await service.skip(task, run_item_id, name)
    return SkippedOut(run_item_id=run_item_id, rater=name, skipped=True)

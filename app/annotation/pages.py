"""Hypermedia routes of the annotation queue: open a run for rating, the queue, judge, skip."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.annotation import forms
from app.annotation.deps import ServiceDep, resolve_rater
from app.comparisons.schemas import VoteInput
from app.errors import InvalidInput
from app.web.deps import State
from app.web.pages import csrf, remember_rater, render

router = APIRouter(include_in_schema=False)


def back(run_id: int, after: int | None = None) -> Response:
    """To the queue (after a judgement: with a recap of the item just judged)."""
    url = f"/runs/{run_id}/queue" + (f"?after={after}" if after else "")
    return RedirectResponse(url, status_code=303)


def _rater(request: Request) -> str:
    rater = resolve_rater(request)
    if rater is None:
        raise InvalidInput("give your rater name first")
    return rater


@router.post("/runs/{run_id}/queue/settings", dependencies=csrf)
async def open_task(request: Request, run_id: int, service: ServiceDep) -> Response:
    """Open the run as a rating task (or change its settings), then go to the queue."""
    await service.open_task(run_id, forms.task_input(await request.form()))
    return back(run_id)


@router.get("/runs/{run_id}/queue", response_class=HTMLResponse)
async def queue_page(
    request: Request,
    run_id: int,
    state: State,
    service: ServiceDep,
    after: int | None = Query(None, ge=1, le=2**31 - 1),
) -> HTMLResponse:
    """The rater's next item (held for them), the guidelines, and everyone's progress."""
    task, run = await service.task(run_id)
    rater = resolve_rater(request)
    item = await service.next_item(task, run, rater) if rater else None
    recap = await service.recap(task, run, after, rater) if rater and after else None
    context = {
        "run": run,
        "task": task,
        "rater": rater,
        "item": item,
        "recap": recap,
        "progress": await service.progress(task, run),
    }
    return render(request, state, "queue.html", context)


@router.post("/runs/{run_id}/queue/rater", dependencies=csrf)
async def set_rater(request: Request, run_id: int) -> Response:
    """Rate under this name (remembered in the browser, like the playground's votes)."""
    form = await request.form()
    name = form.get("rater")
    rater = resolve_rater(request, name if isinstance(name, str) else "")
    if rater is None:
        raise InvalidInput("give your rater name")
    response = back(run_id)
    remember_rater(response, rater)
    return response


@router.post("/runs/{run_id}/queue/items/{run_item_id}", dependencies=csrf)
async def judge(request: Request, run_id: int, run_item_id: int, service: ServiceDep) -> Response:
    """Record the judgement the keys (or buttons) gave, then show the next item."""
    rater = _rater(request)
    task, run = await service.task(run_id)
    vote = forms.verdict(await request.form(), len(run.models), rater)
    try:
        data = VoteInput.model_validate(vote)
    except ValidationError as exc:
        raise InvalidInput(str(exc.errors()[0]["msg"])) from exc
    await service.judge(task, run, run_item_id, rater, data)
    return back(run_id, run_item_id)


@router.post("/runs/{run_id}/queue/items/{run_item_id}/skip", dependencies=csrf)
async def skip(request: Request, run_id: int, run_item_id: int, service: ServiceDep) -> Response:
    """Skip this item and show the next."""
    task, _ = await service.task(run_id)
    await service.skip(task, run_item_id, _rater(request))
    return back(run_id)

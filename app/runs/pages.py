"""Hypermedia routes of prompt sets and batch runs: import, browse, run, watch, read results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from app.errors import InvalidInput
from app.generation.prompts import BaseFormat
from app.runs import importers, queries
from app.runs.deps import RunsDep, SetsDep
from app.runs.executor import ACTIVE
from app.runs.schemas import RunInput
from app.web.deps import SessionDep, State
from app.web.pages import csrf, render

router = APIRouter(include_in_schema=False)
ACTIONS = ("pause", "resume", "cancel", "retry")


def go(request: Request, url: str) -> Response:
    """After a form: htmx follows HX-Location, a plain browser a 303."""
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Location": url})
    return RedirectResponse(url, status_code=303)


@router.get("/prompt-sets", response_class=HTMLResponse)
async def sets_page(request: Request, state: State, sets: SetsDep) -> HTMLResponse:
    """Every set, and a form to import one from a JSONL or CSV file."""
    return render(request, state, "prompt_sets.html", {"sets": await sets.all()})


@router.post("/prompt-sets", dependencies=csrf)
async def import_set(request: Request, sets: SetsDep, state: State) -> Response:
    """Import an uploaded file as a new set (all or nothing), then show it."""
    form = await request.form()
    name, upload = form.get("name"), form.get("file")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("give the set a name")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("choose a JSONL or CSV file")
    try:
        text = (await upload.read()).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the file is not UTF-8 text (byte {exc.start})") from exc
    fmt = "csv" if upload.filename.lower().endswith(".csv") else "jsonl"
    items = importers.parse_text(fmt, text, state.settings.max_set_items)
    created = await sets.store(name, items, f"upload: {upload.filename[:200]}")
    return go(request, f"/prompt-sets/{created.id}")


@router.get("/prompt-sets/{set_id}", response_class=HTMLResponse)
async def set_page(
    request: Request,
    set_id: int,
    state: State,
    sets: SetsDep,
    q: str = Query("", max_length=200),
    tag: str = Query("", max_length=50),
) -> HTMLResponse:
    """A set's items with search and tag filter, and a form to run it."""
    prompt_set = await sets.get(set_id)
    context = {
        "prompt_set": prompt_set,
        "items": await sets.items(prompt_set, q, tag),
        "tags": await sets.tags(prompt_set),
        "q": q,
        "tag": tag,
        "base_formats": list(BaseFormat),
    }
    return render(request, state, "prompt_set.html", context)


@router.post("/runs", dependencies=csrf)
async def start_run(request: Request, runs: RunsDep) -> Response:
    """Start a run from the set page's form, then watch it."""
    form = await request.form()
    params: dict[str, Any] = {}
    for field in ("temperature", "top_p", "max_tokens", "seed"):
        value = form.get(field)
        if isinstance(value, str) and value.strip():
            params[field] = value.strip()
    values = {
        "prompt_set": form.get("prompt_set"),
        "models": [m for m in form.getlist("models") if isinstance(m, str)],
        "params": params,
        "base_format": form.get("base_format") or BaseFormat.RAW.value,
        "blind": form.get("blind") == "on",
    }
    try:
        data = RunInput.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput(importers.describe(exc)) from exc
    run = await runs.create(data)
    return go(request, f"/runs/{run.id}")


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(
    request: Request, state: State, runs: RunsDep, session: SessionDep
) -> HTMLResponse:
    """The newest runs with their progress."""
    progress = [await queries.progress(session, run) for run in await runs.recent()]
    return render(request, state, "runs.html", {"runs": progress})


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(
    request: Request,
    run_id: int,
    state: State,
    runs: RunsDep,
    session: SessionDep,
    status: str = Query("all", pattern="^(all|done|failed|pending)$"),
    q: str = Query("", max_length=200),
    reveal: bool = False,
) -> HTMLResponse:
    """Live progress, controls, failures, and the answers side by side."""
    run = await runs.get(run_id)
    hidden = run.blind and not reveal
    rows = await queries.results(session, run, status, q)
    context = {
        "run": run,
        "progress": await queries.progress(session, run),
        "rows": rows,
        "marks": await state.marks(session, rows),
        "failures": await queries.failures(session, run),
        "labels": [f"Model {i + 1}" if hidden else m for i, m in enumerate(run.models)],
        "status": status,
        "statuses": queries.RESULT_STATUSES,
        "q": q,
        "hidden": hidden,
        # The run's rating task (app.annotation), if it was opened for rating.
        "task": None,
    } | await state.run_page_extras(session, run.id)
    return render(request, state, "run.html", context)


@router.get("/runs/{run_id}/progress", response_class=HTMLResponse)
async def run_progress(
    request: Request, run_id: int, state: State, runs: RunsDep, session: SessionDep
) -> HTMLResponse:
    """The progress fragment the run page polls."""
    run = await runs.get(run_id)
    context = {"run": run, "progress": await queries.progress(session, run)}
    response = render(request, state, "_run_progress.html", context)
    if request.headers.get("HX-Request") and run.status not in ACTIVE:
        # The run stopped while the page watched: reload it once to show the final results.
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/runs/{run_id}/{action}", dependencies=csrf)
async def steer_run(request: Request, run_id: int, action: str, runs: RunsDep) -> Response:
    """Pause, resume, cancel, or retry the failures, then show the run."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}")
    await getattr(runs, action)(run_id)
    return go(request, f"/runs/{run_id}")

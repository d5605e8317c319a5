"""JSON API of prompt sets and batch runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from app.runs import exports, queries
from app.runs.deps import RunsDep, SetsDep
from app.runs.models import PromptItem, PromptSet, Run
from app.runs.schemas import PromptSetInput, RunInput, RunProgress
from app.web.deps import SessionDep, State
from app.web.guards import require_json

router = APIRouter(prefix="/api/v1", tags=["prompt sets and runs"])
json_only = [Depends(require_json)]


class PromptSetOut(BaseModel):
    """A set and its size."""

    id: int
    name: str
    source: str | None
    items: int


class ItemOut(BaseModel):
    """One item of a set."""

    id: str
    prompt: str
    system: str | None
    tags: list[str]
    reference: dict[str, Any] | None


class RunOut(RunProgress):
    """A run's settings and progress."""

    params: dict[str, Any]
    base_format: str
    blind: bool
    failures: list[dict[str, Any]]


def item_out(item: PromptItem) -> ItemOut:
    """An item as the API shows it."""
    return ItemOut(
        id=item.key, prompt=item.prompt, system=item.system, tags=item.tags or [],
        reference=item.reference,
    )  # fmt: skip


@router.get("/prompt-sets", response_model=list[PromptSetOut])
async def list_sets(sets: SetsDep) -> list[PromptSetOut]:
    """Every prompt set, newest first."""
    return [
        PromptSetOut(id=s.id, name=s.name, source=s.source, items=n) for s, n in await sets.all()
    ]


@router.post(
    "/prompt-sets",
    status_code=status.HTTP_201_CREATED,
    response_model=PromptSetOut,
    dependencies=json_only,
)
async def create_set(data: PromptSetInput, sets: SetsDep) -> PromptSetOut:
    """Import a set: `items` as JSON, or a file's `content` with its `format` (jsonl, csv)."""
    created: PromptSet = await sets.create(data)
    return PromptSetOut(
        id=created.id, name=created.name, source=created.source, items=len(created.items)
    )


@router.get("/prompt-sets/{set_id}/items", response_model=list[ItemOut])
async def list_items(
    set_id: int,
    sets: SetsDep,
    q: str = Query("", max_length=200),
    tag: str = Query("", max_length=50),
) -> list[ItemOut]:
    """A set's items, filtered by text and tag."""
    prompt_set = await sets.get(set_id)
    return [item_out(i) for i in await sets.items(prompt_set, q, tag, limit=100_000)]


async def run_out(session: SessionDep, run: Run) -> RunOut:
    """A run's settings, progress and failures."""
    progress = await queries.progress(session, run)
    return RunOut(
        **progress.model_dump(),
        params=run.params,
        base_format=run.base_format,
        blind=run.blind,
        failures=await queries.failures(session, run),
    )


@router.post(
    "/runs", status_code=status.HTTP_201_CREATED, response_model=RunOut, dependencies=json_only
)
async def create_run(data: RunInput, runs: RunsDep, session: SessionDep) -> RunOut:
    """Run a set on 2-4 models with one set of sampling settings (a seed is picked if unset)."""
    return await run_out(session, await runs.create(data))


@router.get("/runs", response_model=list[RunOut])
async def list_runs(runs: RunsDep, session: SessionDep) -> list[RunOut]:
    """The newest runs with their progress."""
    return [await run_out(session, run) for run in await runs.recent()]


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: int, runs: RunsDep, session: SessionDep) -> RunOut:
    """A run's settings, progress and failures."""
    return await run_out(session, await runs.get(run_id))


@router.post("/runs/{run_id}/pause", response_model=RunOut, dependencies=json_only)
async def pause_run(run_id: int, runs: RunsDep, session: SessionDep) -> RunOut:
    """Stop feeding the run; in-flight answers are asked again on resume."""
    return await run_out(session, await runs.pause(run_id))


@router.post("/runs/{run_id}/resume", response_model=RunOut, dependencies=json_only)
async def resume_run(run_id: int, runs: RunsDep, session: SessionDep) -> RunOut:
    """Go on with a paused run."""
    return await run_out(session, await runs.resume(run_id))


@router.post("/runs/{run_id}/cancel", response_model=RunOut, dependencies=json_only)
async def cancel_run(run_id: int, runs: RunsDep, session: SessionDep) -> RunOut:
    """Stop a run for good."""
    return await run_out(session, await runs.cancel(run_id))


@router.post("/runs/{run_id}/retry", response_model=RunOut, dependencies=json_only)
async def retry_run(run_id: int, runs: RunsDep, session: SessionDep) -> RunOut:
    """Ask again for every failed answer."""
    return await run_out(session, await runs.retry(run_id))


@router.get("/runs/{run_id}/results.csv")
async def results_csv(run_id: int, runs: RunsDep, state: State) -> StreamingResponse:
    """Every item with the models' answers side by side (cells safe for spreadsheets)."""
    run = await runs.get(run_id)
    return StreamingResponse(
        exports.csv_lines(state.sessions, run, state.marks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="run-{run.id}.csv"'},
    )


@router.get("/runs/{run_id}/results.jsonl")
async def results_jsonl(run_id: int, runs: RunsDep, state: State) -> StreamingResponse:
    """Every item with each answer and its full provenance, one JSON object per line."""
    run = await runs.get(run_id)
    return StreamingResponse(
        exports.jsonl_lines(state.sessions, run, state.marks),
        media_type="application/jsonl",
        headers={"Content-Disposition": f'attachment; filename="run-{run.id}.jsonl"'},
    )

"""JSON API of token shift over a whole run: start it, follow it, export it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, status
from fastapi.responses import StreamingResponse

from app.lens.runs import exports
from app.lens.runs.deps import RunShiftsDep
from app.lens.runs.schemas import RunShiftInput, RunShiftStatus
from app.web.deps import State
from app.web.guards import require_json

router = APIRouter(prefix="/api/v1/runs", tags=["token lens"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such run"}}
ERRORS: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"description": "The analysis is already running with other settings"},
    415: {"description": "The body is not application/json"},
    422: {"description": "Bad input, nothing to analyse, or no base model to score with"},
}


@router.post(
    "/{run_id}/token-shift",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunShiftStatus,
    dependencies=[Depends(require_json)],
    responses=ERRORS,
)
async def start(run_id: int, data: RunShiftInput, shifts: RunShiftsDep) -> RunShiftStatus:
    """Score every finished chat and adapter answer of the run under a base model, in the
    background (answers already analysed under it are skipped; failed ones are tried again)."""
    return await shifts.start(run_id, data)


@router.get("/{run_id}/token-shift", response_model=RunShiftStatus, responses=NOT_FOUND)
async def get_status(run_id: int, shifts: RunShiftsDep) -> RunShiftStatus:
    """How far the run's token-shift analysis has got, with its failures."""
    return await shifts.status(run_id)


@router.get(
    "/{run_id}/token-shift.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per analysed answer"},
        **NOT_FOUND,
    },
)
async def export_csv(run_id: int, shifts: RunShiftsDep, state: State) -> StreamingResponse:
    """One row per analysed answer: item, model, base, token counts and ratios."""
    run = await shifts.run(run_id)
    return StreamingResponse(
        exports.csv_lines(state.sessions, run),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="run-{run.id}-token-shift.csv"'},
    )


@router.get(
    "/{run_id}/token-shift.jsonl",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/jsonl": {}},
            "description": "One JSON object per line, per analysed answer",
        },
        **NOT_FOUND,
    },
)
async def export_jsonl(run_id: int, shifts: RunShiftsDep, state: State) -> StreamingResponse:
    """One JSON object per analysed answer, with each position's token, rank, class and
    shifted flag."""
    run = await shifts.run(run_id)
    return StreamingResponse(
        exports.jsonl_lines(state.sessions, run),
        media_type="application/jsonl",
        headers={"Content-Disposition": f'attachment; filename="run-{run.id}-token-shift.jsonl"'},
    )

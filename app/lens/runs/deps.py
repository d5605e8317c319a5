"""Dependencies of the run token-shift routers: the executor and the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.lens.runs.executor import ShiftExecutor
from app.lens.runs.service import RunShiftService
from app.web.deps import ModelsDep, SessionDep


def get_shift_executor(request: Request) -> ShiftExecutor:
    """The token-shift executor the lifespan started."""
    executor: ShiftExecutor = request.app.state.shift_executor
    return executor


def get_run_shifts(
    session: SessionDep,
    models: ModelsDep,
    executor: Annotated[ShiftExecutor, Depends(get_shift_executor)],
) -> RunShiftService:
    """Run token-shift jobs over the request's session."""
    return RunShiftService(session, models, executor)


RunShiftsDep = Annotated[RunShiftService, Depends(get_run_shifts)]

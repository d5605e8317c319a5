"""Dependencies of the runs routers: the executor, the set and run services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.runs.executor import RunExecutor
from app.runs.service import RunService
from app.runs.sets import PromptSetService
from app.web.deps import ModelsDep, SessionDep, SettingsDep


def get_executor(request: Request) -> RunExecutor:
    """The run executor the lifespan started."""
    executor: RunExecutor = request.app.state.run_executor
    return executor


ExecutorDep = Annotated[RunExecutor, Depends(get_executor)]


def get_sets(session: SessionDep, settings: SettingsDep) -> PromptSetService:
    """Prompt sets over the request's session."""
    return PromptSetService(session, settings.max_set_items)


def get_runs(
    session: SessionDep, models: ModelsDep, settings: SettingsDep, executor: ExecutorDep
) -> RunService:
    """Runs over the request's session."""
    return RunService(session, models, settings, executor)


SetsDep = Annotated[PromptSetService, Depends(get_sets)]
RunsDep = Annotated[RunService, Depends(get_runs)]

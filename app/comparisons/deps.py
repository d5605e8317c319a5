"""The comparison service as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.comparisons.service import ComparisonService
from app.web.deps import ModelsDep, RunnerDep, SessionDep, SettingsDep


def get_service(
    session: SessionDep, models: ModelsDep, runner: RunnerDep, settings: SettingsDep
) -> ComparisonService:
    """The comparison service bound to this request's session."""
    return ComparisonService(session, models, runner, settings)


ServiceDep = Annotated[ComparisonService, Depends(get_service)]

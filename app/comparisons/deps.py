"""The comparison service as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.comparisons.service import ComparisonService
from app.identity.current import current_identity
from app.web.deps import ModelsDep, RunnerDep, SessionDep, SettingsDep


async def get_service(
    request: Request,
    session: SessionDep,
    models: ModelsDep,
    runner: RunnerDep,
    settings: SettingsDep,
) -> ComparisonService:
    """The comparison service bound to this request's session (and account, in team mode)."""
    return ComparisonService(session, models, runner, settings, current_identity(request))


ServiceDep = Annotated[ComparisonService, Depends(get_service)]

"""FastAPI dependencies as Annotated aliases: settings, models, the DB session, the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import ModelsFile, Settings
from app.db import session_scope
from app.generation.runner import GenerationRunner
from app.web.state import AppState


async def get_state(request: Request) -> AppState:
    """The resources the lifespan created."""
    # These dependencies are async: FastAPI runs a plain `def` one in a worker thread, a
    # thread hop per dependency per request (a fifth of a vote's CPU on a loaded app).
    state: AppState = request.app.state.playground
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_settings(state: State) -> Settings:
    """Process settings."""
    return state.settings


async def get_models(state: State) -> ModelsFile:
    """The configured models."""
    return state.models


async def get_runner(state: State) -> GenerationRunner:
    """The generation runner."""
    return state.runner


async def get_session(state: State) -> AsyncIterator[AsyncSession]:
    """A session per request: committed on success, rolled back on error."""
    # A context manager, so an error raised by the endpoint reaches it and rolls back.
    async with session_scope(state.sessions) as session:
        yield session


# scope="function": the commit runs when the endpoint returns, before the response is sent,
# so a 2xx always means committed (the default "request" scope commits after sending).

SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[ModelsFile, Depends(get_models)]
RunnerDep = Annotated[GenerationRunner, Depends(get_runner)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

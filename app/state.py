"""The long-lived resources of one app instance, created and closed by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.comparisons.runner import GenerationRunner
from app.config import ModelsFile, Settings
from app.security import CsrfSigner


@dataclass
class AppState:
    """Everything a request may need beyond itself."""

    settings: Settings
    models: ModelsFile
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    runner: GenerationRunner
    csrf: CsrfSigner

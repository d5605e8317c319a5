"""The long-lived resources of one app instance, created and closed by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import ModelKind, ModelsFile, Settings
from app.generation.launcher import LocalServers
from app.generation.runner import GenerationRunner
from app.web.csrf import CsrfSigner


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
    local_servers: LocalServers | None = None
    # Shown on every page, e.g. that offline demo models replace the defaults.
    notice: str | None = None

    def base_model_names(self) -> tuple[str, ...]:
        """The base models (the token lens scores or continues chat answers with them)."""
        return self.models.names_of_kind(ModelKind.BASE)

    def model_problems(self) -> dict[str, str]:
        """Launched model servers that have died, with why."""
        return self.local_servers.problems() if self.local_servers is not None else {}

"""The long-lived resources of one app instance, created and closed by the lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import ModelKind, ModelsFile, Settings
from app.generation.launcher import LocalServers
from app.generation.runner import GenerationRunner
from app.identity.sessions import SessionSigner
from app.web.csrf import CsrfSigner

AnalysesLookup = Callable[[AsyncSession, Iterable[int]], Awaitable[dict[int, Any]]]
# Right or wrong, by generation id, for a page or batch of a run's result rows.
MarksLookup = Callable[[AsyncSession, Any], Awaitable[dict[int, bool]]]
# Something another domain shows on a run's page, looked up by run id.
RunExtra = Callable[[AsyncSession, int], Awaitable[Any]]


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
    # Stored analyses of answers by generation id, drawn beside them (the token lens's):
    # create_app plugs the lens in here, so that comparisons need not import it.
    analyses_of: AnalysesLookup | None = None
    # The same for the forgetting check's marks on a run's answers, and for what other domains
    # add to a run's page (the annotation queue's task), so that runs import neither.
    marks_of: MarksLookup | None = None
    run_extras: dict[str, RunExtra] = field(default_factory=dict)
    # Team mode's session cookies; None in local mode (no accounts).
    session_signer: SessionSigner | None = None

    async def analyses(
        self, session: AsyncSession, generation_ids: Iterable[int]
    ) -> dict[int, Any]:
        """The stored analyses of these answers (none when no lookup is plugged in)."""
        if self.analyses_of is None:
            return {}
        return await self.analyses_of(session, generation_ids)

    async def marks(self, session: AsyncSession, rows: Any) -> dict[int, bool]:
        """Right or wrong for these result rows' answers (none when no lookup is plugged in)."""
        return await self.marks_of(session, rows) if self.marks_of is not None else {}

    async def run_page_extras(self, session: AsyncSession, run_id: int) -> dict[str, Any]:
        """What the plugged-in domains add to a run's page, by template name."""
        return {name: await lookup(session, run_id) for name, lookup in self.run_extras.items()}

    def base_model_names(self) -> tuple[str, ...]:
        """The base models (the token lens scores or continues chat answers with them)."""
        return self.models.names_of_kind(ModelKind.BASE)

    def model_problems(self) -> dict[str, str]:
        """Launched model servers that have died, with why."""
        return self.local_servers.problems() if self.local_servers is not None else {}

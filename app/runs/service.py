"""Batch run use cases: start a run, pause, resume, cancel, retry its failures."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import ModelsFile, Settings
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.runs.executor import RunExecutor
from app.runs.models import MAX_RUN_MODELS, MIN_RUN_MODELS, Run, RunItem, RunStatus
from app.runs.schemas import RunInput
from app.runs.sets import PromptSetService


@dataclass
class RunService:
    """Creates runs and steers their drivers; commits before the executor acts."""

    session: AsyncSession
    models: ModelsFile
    settings: Settings
    executor: RunExecutor

    async def create(self, data: RunInput) -> Run:
        """Store the run and one run item per set item, then start it."""
        names = list(data.models)
        if not MIN_RUN_MODELS <= len(names) <= MAX_RUN_MODELS:
            raise InvalidInput(f"choose {MIN_RUN_MODELS} to {MAX_RUN_MODELS} models")
        if len(set(names)) != len(names):
            raise InvalidInput("a model can appear only once in a run")
        for name in names:
            if self.models.get(name) is None:
                known = ", ".join(m.name for m in self.models.models)
                raise InvalidInput(f"unknown model {name!r} (configured: {known})")
        params = data.params
        if params.max_tokens > self.settings.max_tokens_limit:
            raise InvalidInput(f"max_tokens is at most {self.settings.max_tokens_limit}")
        prompt_set = await PromptSetService(self.session, self.settings.max_set_items).get(
            data.prompt_set
        )
        items = await PromptSetService(self.session, self.settings.max_set_items).items(
            prompt_set, limit=self.settings.max_set_items
        )
        run = Run(
            prompt_set_id=prompt_set.id,
            models=names,
            params=params.with_seed().model_dump(),
            base_format=data.base_format.value,
            blind=data.blind,
            status=RunStatus.QUEUED,
        )
        run.items = [RunItem(prompt_item_id=item.id, position=item.position) for item in items]
        self.session.add(run)
        await self.session.commit()
        self.executor.launch(run.id)
        return run

    async def get(self, run_id: int) -> Run:
        """A run (without its items)."""
        run = await self.session.get(Run, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        return run

    async def recent(self, limit: int = 50) -> list[Run]:
        """The newest runs first."""
        return list(await self.session.scalars(select(Run).order_by(Run.id.desc()).limit(limit)))

    async def pause(self, run_id: int) -> Run:
        """Stop feeding the run; its in-flight answers are cancelled and asked again on resume."""
        run = await self.get(run_id)
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            raise Conflict(f"only a queued or running run can be paused (this one is {run.status})")
        await self.executor.stop_everywhere(run_id)
        return await self._set_status(run, RunStatus.PAUSED)

    async def resume(self, run_id: int) -> Run:
        """Go on from where a paused run stopped."""
        run = await self.get(run_id)
        if run.status != RunStatus.PAUSED:
            raise Conflict(f"only a paused run can be resumed (this one is {run.status})")
        run = await self._set_status(run, RunStatus.RUNNING)
        self.executor.launch(run_id)
        return run

    async def cancel(self, run_id: int) -> Run:
        """Stop the run for good; what is done stays."""
        run = await self.get(run_id)
        if run.status in (RunStatus.CANCELLED, RunStatus.DONE):
            raise Conflict(f"the run is already {run.status}")
        await self.executor.stop_everywhere(run_id)
        run.finished_at = utcnow()
        return await self._set_status(run, RunStatus.CANCELLED)

    async def retry(self, run_id: int) -> Run:
        """Ask again for every failed answer of a finished run."""
        run = await self.get(run_id)
        if run.status == RunStatus.CANCELLED:
            raise Conflict("the run was cancelled: start a new run instead")
        if run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and self.executor.active(run_id):
            raise Conflict("wait until the run has finished (or pause it) before retrying")
        await self.executor.stop_everywhere(run_id)
        run = await self._set_status(run, RunStatus.RUNNING)
        self.executor.launch(run_id, retry_failed=True)
        return run

    async def _set_status(self, run: Run, status: RunStatus) -> Run:
        run.status = status
        await self.session.commit()
        return run

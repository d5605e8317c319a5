"""Start a run's token-shift analysis (or go on with it, or retry its failures); read its state."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import ModelsFile
from app.errors import Conflict, NotFound
from app.lens.models import RunShiftJob
from app.lens.runs import queries
from app.lens.runs.executor import ShiftExecutor
from app.lens.runs.schemas import JobStatus, RunShiftInput, RunShiftStatus
from app.lens.runs.targets import check_startable, targets
from app.runs.models import Run


@dataclass
class RunShiftService:
    """A run's bulk token-shift job; commits before the executor acts."""

    session: AsyncSession
    models: ModelsFile
    executor: ShiftExecutor

    async def run(self, run_id: int) -> Run:
        """The run (NotFound if there is none)."""
        run = await self.session.get(Run, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        return run

    async def start(self, run_id: int, data: RunShiftInput) -> RunShiftStatus:
        """Analyse every answer not yet analysed under its base model, failures included;
        a job already running with the same settings is left to go on."""
        run = await self.run(run_id)
        found = await targets(self.session, run, self.models, data.base)
        check_startable(run, self.models, found)
        job = await queries.job_of(self.session, run.id)
        if job is not None and self.executor.active(run.id):
            if (job.base_model, job.top_k) != (data.base, data.top_k):
                raise Conflict(
                    "this run's token-shift analysis is running with other settings: wait "
                    "until it has finished"
                )
            return await self.status(run_id)
        if job is None:
            job = RunShiftJob(run_id=run.id, top_k=data.top_k, status=JobStatus.RUNNING)
            self.session.add(job)
        job.base_model, job.top_k, job.status = data.base, data.top_k, JobStatus.RUNNING
        await self.session.commit()
        self.executor.launch(run.id)
        return await self.status(run_id)

    async def status(self, run_id: int) -> RunShiftStatus:
        """Answers analysed, failed and left, and the failures."""
        run = await self.run(run_id)
        job = await queries.job_of(self.session, run.id)
        return await queries.status(
            self.session, run, self.models, job, self.executor.active(run.id)
        )

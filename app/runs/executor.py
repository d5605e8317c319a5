"""Runs batch runs in the background: feeds the generation runner, bounded per model server.

One driver task per active run. Each (item, model) answer that is not yet done becomes a job;
jobs wait on their model server's semaphore, so at most `run_concurrency` requests per server
are in flight (enough to keep vLLM's continuous batch full, without flooding it). A driver
that stops (pause, cancel, shutdown) cancels its in-flight answers; a restarted driver
re-queues exactly the answers that are not done and not failed, so nothing is generated twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from app.config import ModelsFile, Settings
from app.db import utcnow
from app.errors import PlaygroundError
from app.generation.contract import contract_for
from app.generation.drivers import Drivers
from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat
from app.generation.records import Generation, GenerationStatus
from app.generation.runner import GenerationRunner
from app.runs.models import Run, RunItem, RunStatus
from app.runs.queries import runs_to_resume

log = logging.getLogger(__name__)
# Answers in these states are asked again when a run (re)starts; errors wait for a retry.
REDO = {
    GenerationStatus.PENDING,
    GenerationStatus.RUNNING,
    GenerationStatus.CANCELLED,
    GenerationStatus.INTERRUPTED,
}
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
# The fan-out message that stops a run's driver in whichever process runs it.
STOP_RUN = "stop-run"


def run_group(run_id: int) -> int:
    """The runner group of a run's answers (negative: never a turn id)."""
    return -run_id


@dataclass(frozen=True)
class Job:
    """One answer to produce: an item's prompt for the model in a slot."""

    run_item_id: int
    slot: str
    model_name: str
    prompt: str
    system: str | None


@dataclass(frozen=True)
class Plan:
    """What a driver needs of its run, read once."""

    run_id: int
    params: SamplingParams
    base_format: BaseFormat
    jobs: list[Job]


class RunExecutor:
    """Owns the driver task of every active run in this process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        models: ModelsFile,
        runner: GenerationRunner,
        settings: Settings,
    ) -> None:
        self._sessions = sessions
        self._models = models
        self._runner = runner
        self._settings = settings
        self._drivers = Drivers("run")
        self._limits: dict[str, asyncio.Semaphore] = {}
        # Pause and cancel reach the process driving a run, wherever they were asked.
        self._stopping: set[asyncio.Task[None]] = set()
        runner.remote.handle(STOP_RUN, self._on_stop_message)

    async def resume_all(self) -> list[int]:
        """Start a driver for every run left queued or running (after a restart), except the
        runs another live process is driving (its answers in flight are its own: the start's
        sweep has already interrupted those of dead processes)."""
        async with self._sessions() as session:
            ids = list(await session.scalars(runs_to_resume(self._runner.owner)))
        for run_id in ids:
            self.launch(run_id)
        return ids

    def launch(self, run_id: int, retry_failed: bool = False) -> None:
        """Start the run's driver unless one is active."""
        self._drivers.start(run_id, lambda: self._drive(run_id, retry_failed))

    def active(self, run_id: int) -> bool:
        """Whether the run's driver is working here."""
        return self._drivers.active(run_id)

    async def wait(self, run_id: int) -> None:
        """Wait until the run's driver here has finished (at once if none is active)."""
        await self._drivers.wait(run_id)

    async def stop(self, run_id: int) -> None:
        """Stop the run's driver and wait until its in-flight answers are stored."""
        await self._drivers.stop(run_id)

    async def stop_everywhere(self, run_id: int) -> None:
        """Stop the run's driver here, and ask every other process to stop theirs."""
        await self.stop(run_id)
        self._runner.remote.broadcast({"op": STOP_RUN, "run": run_id})

    def _on_stop_message(self, message: dict[str, object]) -> None:
        run_id = message.get("run")
        if isinstance(run_id, int) and self.active(run_id):
            task = asyncio.create_task(self.stop(run_id), name=f"stop-run-{run_id}")
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def shutdown(self) -> None:
        """Stop every driver (their runs stay running in the DB, to resume on next start)."""
        await self._drivers.stop_all()

    async def _drive(self, run_id: int, retry_failed: bool) -> None:
        try:
            plan = await self._plan(run_id, retry_failed)
            jobs = [asyncio.create_task(self._answer(plan, job)) for job in plan.jobs]
            try:
                if jobs:
                    await asyncio.gather(*jobs)
            except asyncio.CancelledError:
                # gather has cancelled every job: wait until each has settled its answer.
                await asyncio.wait(jobs)
                raise
            await self._finish(run_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run %s: driver failed", run_id)

    async def _plan(self, run_id: int, retry_failed: bool) -> Plan:
        """Mark the run running and list the answers still to produce."""
        redo = REDO | ({GenerationStatus.ERROR} if retry_failed else set())
        async with self._sessions() as session, session.begin():
            run = await session.get(
                Run,
                run_id,
                options=[
                    selectinload(Run.items).selectinload(RunItem.prompt_item),
                    selectinload(Run.items).selectinload(RunItem.generations),
                ],
            )
            if run is None:
                raise LookupError(f"run {run_id} vanished")
            run.status = RunStatus.RUNNING
            run.started_at = utcnow()
            run.finished_at = None
            jobs = []
            for item in run.items:
                for slot, name in zip(run.slots, run.models, strict=True):
                    current = item.current(slot)
                    if current is not None and GenerationStatus(current.status) not in redo:
                        continue
                    if current is not None and not current.finished:
                        # Left pending or running by a stopped driver: it will never finish.
                        current.status = GenerationStatus.INTERRUPTED
                        current.finish_reason = "interrupted"
                    prompt = item.prompt_item
                    jobs.append(Job(item.id, slot, name, prompt.prompt, prompt.system))
            params = SamplingParams.model_validate(run.params)
            return Plan(run.id, params, BaseFormat(run.base_format), jobs)

    def _limit(self, server_url: str) -> asyncio.Semaphore:
        limit = self._limits.get(server_url)
        if limit is None:
            limit = self._limits.setdefault(
                server_url, asyncio.Semaphore(self._settings.run_concurrency)
            )
        return limit

    async def _answer(self, plan: Plan, job: Job) -> None:
        """Produce one answer, holding a place on its model server while it runs."""
        model = self._models.get(job.model_name)
        if model is None:
            await self._store_failure(job, f"model {job.model_name!r} is no longer configured")
            return
        async with self._limit(model.server_url):
            try:
                prompted = contract_for(model.kind).prepare(
                    model,
                    job.prompt,
                    [],
                    job.system,
                    plan.params,
                    base_format=plan.base_format,
                    urial_file=self._settings.urial_file,
                    top_logprobs=self._settings.token_top_k,
                )
            except PlaygroundError as exc:
                await self._store_failure(job, exc.message)
                return
            request = prompted.request
            generation = Generation.pending(
                request,
                slot=job.slot,
                prompt_format=prompted.prompt_format,
                seed=plan.params.seed,
                owner=self._runner.owner,
                run_item_id=job.run_item_id,
            )
            insert = asyncio.ensure_future(self._insert(generation))
            try:
                await asyncio.shield(insert)
                self._runner.start(generation.id, run_group(plan.run_id), request)
                await self._runner.wait_finished([generation.id])
            except asyncio.CancelledError:
                # Stopped: the row must not stay pending, whether or not its job ever ran; a
                # second cancellation must not cut this short either.
                settle = asyncio.ensure_future(self._settle(insert, generation))
                while not settle.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(settle)
                raise

    async def _insert(self, generation: Generation) -> None:
        async with self._sessions() as session, session.begin():
            session.add(generation)

    async def _settle(self, insert: asyncio.Future[None], generation: Generation) -> None:
        """After a stop: cancel the answer's job, then mark the row cancelled if it never ran."""
        with contextlib.suppress(Exception):
            await insert
        if generation.id is None:
            return
        self._runner.cancel([generation.id])
        await self._runner.wait_finished([generation.id])
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Generation)
                .where(
                    Generation.id == generation.id,
                    Generation.status.in_((GenerationStatus.PENDING, GenerationStatus.RUNNING)),
                )
                .values(
                    status=GenerationStatus.CANCELLED,
                    finish_reason="cancelled",
                    finished_at=utcnow(),
                )
            )

    async def _store_failure(self, job: Job, message: str) -> None:
        """An answer that could not even be asked for, listed among the failures."""
        async with self._sessions() as session, session.begin():
            session.add(
                Generation(
                    run_item_id=job.run_item_id,
                    slot=job.slot,
                    model_name=job.model_name,
                    model_kind="",
                    served_model="",
                    endpoint="",
                    prompt_format="",
                    params={},
                    status=GenerationStatus.ERROR,
                    finish_reason="error",
                    error=message,
                    finished_at=utcnow(),
                )
            )

    async def _finish(self, run_id: int) -> None:
        """Mark the run done, unless it was paused or cancelled meanwhile."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.RUNNING)
                .values(status=RunStatus.DONE, finished_at=utcnow())
            )

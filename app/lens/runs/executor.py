"""Analyses a run's answers in the background, bounded per base-model server.

One driver task per run whose job is running. Each answer not yet analysed under its base model
becomes a task that waits on its base server's semaphore (`PLAYGROUND_RUN_CONCURRENCY` places,
the bound batch runs use), then makes the lens's usual requests (tokenize the context, one
scoring request) and stores the analysis, or the failure, in its own short transaction: a
stopped driver leaves nothing half-stored, and a restarted one goes on with what is left.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import ConfigError, ModelConfig, ModelsFile, Settings
from app.db import utcnow
from app.errors import PlaygroundError
from app.generation.drivers import Drivers
from app.lens.errors import VocabularyMismatch
from app.lens.models import RunShiftFailure, RunShiftJob
from app.lens.runs import queries
from app.lens.runs.schemas import JobStatus
from app.lens.runs.scoring import Answer, load_answer, store_analysis
from app.lens.runs.targets import Target, targets
from app.lens.shift import ShiftAnalysis, token_shift
from app.lens.vocabulary import same_vocabulary
from app.runs.models import Run

log = logging.getLogger(__name__)
# A failure message is kept to this many characters.
MAX_ERROR_CHARS = 2000


@dataclass
class Drive:
    """One driver's shared state: the job, and each (base, chat) pair's vocabulary check."""

    job_id: int
    top_k: int
    checks: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)


class ShiftExecutor:
    """Owns the driver task of every run whose token-shift job is running in this process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        models: ModelsFile,
        http: httpx.AsyncClient,
        settings: Settings,
    ) -> None:
        self._sessions = sessions
        self._models = models
        self._http = http
        self._settings = settings
        self._drivers = Drivers("token-shift")
        self._limits: dict[str, asyncio.Semaphore] = {}

    async def resume_all(self) -> list[int]:
        """Start a driver for every job left running (after a restart)."""
        async with self._sessions() as session:
            ids = list(
                await session.scalars(
                    select(RunShiftJob.run_id).where(RunShiftJob.status == JobStatus.RUNNING)
                )
            )
        for run_id in ids:
            self.launch(run_id)
        return ids

    def launch(self, run_id: int) -> None:
        """Start the run's driver unless one is active."""
        self._drivers.start(run_id, lambda: self._drive(run_id))

    def active(self, run_id: int) -> bool:
        """Whether the run's driver is working here."""
        return self._drivers.active(run_id)

    async def wait(self, run_id: int) -> None:
        """Wait until the run's driver here has finished (at once if none is active)."""
        await self._drivers.wait(run_id)

    async def stop(self, run_id: int) -> None:
        """Stop the run's driver; analyses in flight are dropped (nothing half-stored)."""
        await self._drivers.stop(run_id)

    async def shutdown(self) -> None:
        """Stop every driver (their jobs stay running in the DB, to resume on next start)."""
        await self._drivers.stop_all()

    def _limit(self, server_url: str) -> asyncio.Semaphore:
        limit = self._limits.get(server_url)
        if limit is None:
            limit = self._limits.setdefault(
                server_url, asyncio.Semaphore(self._settings.run_concurrency)
            )
        return limit

    async def _drive(self, run_id: int) -> None:
        try:
            drive, work = await self._plan(run_id)
            tasks = [asyncio.create_task(self._one(drive, target)) for target in work]
            try:
                if tasks:
                    await asyncio.gather(*tasks)
            finally:
                # Stopped, or one answer could not even store its failure: end the others too.
                left = [t for t in [*tasks, *drive.checks.values()] if not t.done()]
                for task in left:
                    task.cancel()
                if left:
                    await asyncio.wait(left)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run %s: token-shift driver failed", run_id)
        # Every answer was tried (or the driver failed): the page stops waiting either way.
        await self._finish(run_id)

    async def _plan(self, run_id: int) -> tuple[Drive, list[Target]]:
        """Mark the job running and list the answers still to analyse."""
        async with self._sessions() as session, session.begin():
            job = await queries.job_of(session, run_id)
            run = await session.get(Run, run_id)
            if job is None or run is None:
                raise LookupError(f"run {run_id} or its token-shift job vanished")
            job.status = JobStatus.RUNNING
            job.started_at, job.finished_at = utcnow(), None
            found = await targets(session, run, self._models, job.base_model)
            analysed = await queries.analysed_bases(session, [t.generation_id for t in found])
            work = [t for t in queries.pending(found, analysed) if t.base is not None]
            return Drive(job.id, job.top_k), work

    async def _one(self, drive: Drive, target: Target) -> None:
        """Analyse one answer while holding a place on its base model's server."""
        base = target.base
        assert base is not None  # the plan leaves out answers without a base model
        try:
            limit = self._limit(base.server_url)
        except ConfigError as exc:  # a launched base model whose server is not up
            await self._fail(drive, target, base, str(exc))
            return
        async with limit:
            try:
                answer = await self._answer(target.generation_id)
                await self._same_vocabulary(drive, base, answer.chat)
                result = await token_shift(
                    self._http,
                    base,
                    answer.context.text,
                    answer.token_ids,
                    top_k=drive.top_k,
                    chat_logprobs=answer.chat_logprobs,
                )
                await self._store(drive, target, base, answer, result)
            except PlaygroundError as exc:
                await self._fail(drive, target, base, exc.message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("run answer %s: token shift failed", target.generation_id)
                await self._fail(drive, target, base, f"unexpected error: {exc!r}")

    async def _answer(self, generation_id: int) -> Answer:
        async with self._sessions() as session:
            return await load_answer(
                session, self._models, self._http, self._settings, generation_id
            )

    async def _same_vocabulary(self, drive: Drive, base: ModelConfig, chat: ModelConfig) -> None:
        """Check once per driver that a chat model's token ids mean the same to the base."""
        key = (base.name, chat.name)
        check = drive.checks.get(key)
        if check is None:
            check = drive.checks[key] = asyncio.create_task(self._check(base, chat))
        await asyncio.shield(check)

    async def _check(self, base: ModelConfig, chat: ModelConfig) -> None:
        verdict = await same_vocabulary(self._http, base, chat)
        if not verdict.same:
            raise VocabularyMismatch(f"cannot score {chat.name}'s tokens: {verdict.reason}")

    async def _store(
        self,
        drive: Drive,
        target: Target,
        base: ModelConfig,
        answer: Answer,
        result: ShiftAnalysis,
    ) -> None:
        try:
            async with self._sessions() as session, session.begin():
                await store_analysis(session, answer, base, result)
                await session.execute(
                    delete(RunShiftFailure).where(
                        RunShiftFailure.job_id == drive.job_id,
                        RunShiftFailure.generation_id == target.generation_id,
                    )
                )
        except IntegrityError:
            # Someone analysed the same answer from its own page at the same moment.
            await self._fail(drive, target, base, "the answer was analysed elsewhere meanwhile")

    async def _fail(self, drive: Drive, target: Target, base: ModelConfig, message: str) -> None:
        """Record (or update) why an answer could not be analysed."""
        async with self._sessions() as session, session.begin():
            failure = await session.scalar(
                select(RunShiftFailure).where(
                    RunShiftFailure.job_id == drive.job_id,
                    RunShiftFailure.generation_id == target.generation_id,
                )
            )
            if failure is None:
                failure = RunShiftFailure(job_id=drive.job_id, generation_id=target.generation_id)
                session.add(failure)
            failure.base_model = base.name
            failure.error = message[:MAX_ERROR_CHARS]
            failure.created_at = utcnow()

    async def _finish(self, run_id: int) -> None:
        """Mark the job done: every answer was tried."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(RunShiftJob)
                .where(RunShiftJob.run_id == run_id)
                .values(status=JobStatus.DONE, finished_at=utcnow())
            )

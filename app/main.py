"""The FastAPI application: create_app() wires settings, database, model client and routers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app.accounts import admin as accounts_admin
from app.accounts import api as accounts_api
from app.accounts import pages as accounts_pages
from app.accounts import setup as accounts_setup
from app.accounts.guard import authorize
from app.annotation import api as annotation_api
from app.annotation import pages as annotation_pages
from app.annotation import queries as annotation_queries
from app.catalog import api as catalog_api
from app.catalog import pages as catalog_pages
from app.comparisons import api as comparisons_api
from app.comparisons import pages as comparisons_pages
from app.comparisons import templating as comparisons_templating
from app.config import ModelsFile, Settings, load_models_file, load_settings
from app.db import create_engine, create_sessionmaker
from app.exports import api as exports_api
from app.exports import training_api
from app.forgetting import api as forgetting_api
from app.forgetting import pages as forgetting_pages
from app.forgetting import scoring as forgetting_scoring
from app.generation.client import ModelClient
from app.generation.contract import GenerationRequest
from app.generation.fanout import fanout_for
from app.generation.launcher import LocalServers
from app.generation.liveness import Heartbeat, new_owner_id
from app.generation.lora_gate import LoraGates
from app.generation.runner import GenerationRunner
from app.leaderboard import api as leaderboard_api
from app.leaderboard import pages as leaderboard_pages
from app.lens import api as lens_api
from app.lens import pages as lens_pages
from app.lens import queries as lens_queries
from app.lens import templating as lens_templating
from app.lens.runs import api as lens_runs_api
from app.lens.runs import pages as lens_runs_pages
from app.lens.runs.executor import ShiftExecutor
from app.migrate import upgrade_to_head
from app.raters import api as raters_api
from app.raters import pages as raters_pages
from app.runs import api as runs_api
from app.runs import pages as runs_pages
from app.runs.executor import RunExecutor
from app.runs.sets import add_bundled_sets
from app.web import health, openapi
from app.web.csrf import CsrfSigner
from app.web.errors import install_error_handlers
from app.web.headers import SecurityHeadersMiddleware
from app.web.hosts import AllowedHostsMiddleware
from app.web.limits import BodySizeLimitMiddleware
from app.web.params import check_path_ids
from app.web.state import AppState
from app.web.templating import templates

log = logging.getLogger(__name__)


def needs_lora_gate(app: FastAPI, request: GenerationRequest) -> bool:
    """Whether a request's server must not batch its base model with its adapters."""
    state: AppState = app.state.playground
    setting = state.settings.lora_isolation
    url = request.model.server_url
    if setting == "never":
        return False
    if setting == "auto":
        local = state.local_servers
        if local is None or url not in local.cpu_server_urls():
            return False
    return any(m.is_adapter and m.url == url for m in state.models.models)


STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def create_app(
    settings: Settings | None = None,
    models: ModelsFile | None = None,
    local_servers: LocalServers | None = None,
    notice: str | None = None,
) -> FastAPI:
    """Build the app; config errors surface here, before anything is served."""
    settings = settings or load_settings()
    models = models or load_models_file(settings.models_file)
    session_signer = accounts_setup.session_signer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.resolved_database_url()
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        if settings.migrate_on_start:
            await upgrade_to_head(engine)
        sessions = create_sessionmaker(engine)
        # Only generations whose process stopped beating are interrupted: another replica's
        # running generations are left alone.
        heartbeat = Heartbeat(
            sessions,
            new_owner_id(),
            interval=settings.heartbeat_seconds,
            stale_after=settings.stale_after_seconds,
        )
        interrupted = await heartbeat.start()
        if interrupted:
            log.warning("marked %d unfinished generations as interrupted", interrupted)
        timeout = httpx.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.read_timeout_seconds,
            write=30.0,
            pool=30.0,
        )
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
        http = httpx.AsyncClient(timeout=timeout, limits=limits)
        runner = GenerationRunner(
            ModelClient(http),
            sessions,
            LoraGates(lambda request: needs_lora_gate(app, request)),
            owner=heartbeat.owner,
            fanout=fanout_for(url, settings.fanout == "auto"),
            poll_seconds=settings.follow_poll_seconds,
        )
        await runner.remote.start()
        app.state.playground = AppState(
            settings=settings,
            models=models,
            engine=engine,
            sessions=sessions,
            http=http,
            runner=runner,
            csrf=CsrfSigner(settings.resolved_secret_key(), settings.secure_cookies),
            local_servers=local_servers,
            notice=notice,
            analyses_of=lens_queries.analyses_of,
            marks_of=forgetting_scoring.marks,
            run_extras={"task": annotation_queries.task_of},
            session_signer=session_signer,
        )
        await add_bundled_sets(sessions, settings.max_set_items)
        app.state.run_executor = executor = RunExecutor(sessions, models, runner, settings)
        await executor.resume_all()
        app.state.shift_executor = shifts = ShiftExecutor(sessions, models, http, settings)
        await shifts.resume_all()
        # Everything built so far (modules, templates, compiled queries) lives as long as the
        # process: move it out of the collector's sight, so that the collections triggered by
        # per-request garbage stop walking it again and again (gc was ~7% of a loaded app).
        gc.freeze()
        try:
            yield
        finally:
            await shifts.shutdown()
            await executor.shutdown()
            await runner.shutdown()
            await heartbeat.stop()
            await http.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Base vs Chat Playground",
        summary="Compare a base model and its chat sibling side by side; rate; export pairs.",
        version="0.1.0",
        lifespan=lifespan,
        # Every route: a path id no row can have is a 404, never a database error.
        # Then team mode's access rules (app/accounts/rules.py), on every route.
        dependencies=[Depends(check_path_ids), Depends(authorize)],
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AllowedHostsMiddleware, allowed_hosts=settings.resolved_allowed_hosts())
    app.add_middleware(SecurityHeadersMiddleware)
    install_error_handlers(app)
    for register in (comparisons_templating.register, lens_templating.register):
        register(templates.env)
    openapi.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    app.include_router(catalog_api.router)
    app.include_router(comparisons_api.router)
    app.include_router(exports_api.router)
    app.include_router(training_api.router)
    app.include_router(lens_api.router)
    app.include_router(lens_runs_api.router)
    app.include_router(leaderboard_api.router)
    app.include_router(raters_api.router)
    app.include_router(runs_api.router)
    app.include_router(forgetting_api.router)
    app.include_router(annotation_api.router)
    app.include_router(comparisons_pages.router)
    app.include_router(lens_pages.router)
    app.include_router(lens_runs_pages.router)
    app.include_router(catalog_pages.router)
    app.include_router(leaderboard_pages.router)
    app.include_router(raters_pages.router)
    app.include_router(runs_pages.router)
    app.include_router(forgetting_pages.router)
    app.include_router(annotation_pages.router)
    app.include_router(accounts_api.router)
    app.include_router(accounts_pages.router)
    app.include_router(accounts_admin.router)
    return app

"""Shared fixtures: two fake vLLM servers (base and chat), a migrated database, the app."""

from __future__ import annotations

import os
import re
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from psycopg import sql
from psycopg.rows import TupleRow
from sqlalchemy.engine import make_url

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeConfig, FakeServer

# A port nothing listens on: connections are refused at once.
DEAD_URL = "http://127.0.0.1:9/v1"
# The in-process clients call the app "testserver" (httpx's and Starlette's convention); every
# app a test builds (from Settings read in this environment) answers to it besides localhost.
os.environ["PLAYGROUND_ALLOWED_HOSTS"] = "localhost,127.0.0.1,::1,testserver"


@pytest.fixture(scope="session")
def base_server() -> Iterator[FakeServer]:
    """A fake vLLM server playing a base model."""
    with FakeServer(FakeConfig(served_model_name="tiny-base")) as server:
        yield server


@pytest.fixture(scope="session")
def chat_server() -> Iterator[FakeServer]:
    """A fake vLLM server playing a chat model."""
    with FakeServer(FakeConfig(served_model_name="tiny-chat")) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with the fakes' default behaviour and an empty request log."""
    yield
    for name in ("base_server", "chat_server"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture
def models(base_server: FakeServer, chat_server: FakeServer) -> ModelsFile:
    """Base, chat, and a model whose server is down."""
    return ModelsFile(
        models=[
            ModelConfig(
                name="base", kind=ModelKind.BASE, url=base_server.base_url, model="tiny-base",
                revision="rev-base-1",
            ),
            ModelConfig(
                name="chat", kind=ModelKind.CHAT, url=chat_server.base_url, model="tiny-chat"
            ),
            ModelConfig(name="down", kind=ModelKind.CHAT, url=DEAD_URL, model="nothing"),
        ]
    )  # fmt: skip


# Set (e.g. by `make test` through scripts/postgres-test-server.sh) to run on PostgreSQL.
POSTGRES_ENV = "TEST_POSTGRES_URL"


def postgres_server_url() -> str | None:
    """The PostgreSQL server the suite runs against (driver-neutral URL), or None for SQLite."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        return None
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_admin(server_url: str) -> psycopg.Connection[TupleRow]:
    """An autocommit connection to the server's maintenance database, for CREATE/DROP DATABASE."""
    return psycopg.connect(server_url, autocommit=True, connect_timeout=10)


# How long a closed connection's backend may take to leave pg_stat_activity.
CLOSE_GRACE_SECONDS = 2.0


class LeakedConnectionWarning(UserWarning):
    """A test database still had open connections when it was dropped."""


def open_connections(admin: psycopg.Connection[TupleRow], database: str) -> int:
    """Connections to a database that stay open for a grace period.

    A backend whose client just closed its connection leaves pg_stat_activity a moment later,
    so only what is still there after the grace period counts as left open.
    """
    deadline = time.monotonic() + CLOSE_GRACE_SECONDS
    while True:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
        count = int(row[0]) if row else 0
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, uniquely named database on the server (its URL), dropped on exit even if in use."""
    name = f"test_{uuid.uuid4().hex[:20]}"
    with postgres_admin(server_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with postgres_admin(server_url) as admin:
            left = open_connections(admin, name)
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        if left:
            warnings.warn(
                f"{left} connection(s) to test database {name} were still open at its drop "
                "(an engine not disposed, or an app whose lifespan did not end?)",
                LeakedConnectionWarning,
                stacklevel=1,
            )


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh database per test: a SQLite file, or a new PostgreSQL database dropped afterwards.

    Fixtures using this one (settings, app, client) are torn down first, so the app's lifespan
    has disposed of its engine before the drop; FORCE ends any connection still left over.
    """
    server = postgres_server_url()
    if server is None:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with postgres_database(server) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for a test app: its own database, fast token coalescing."""
    return Settings(
        DATABASE_URL=database_url,
        data_dir=tmp_path,
        secret_key="test-secret-" + "x" * 32,
        stream_flush_seconds=0.01,
    )


@pytest.fixture
def app(settings: Settings, models: ModelsFile) -> FastAPI:
    """The app under test (lifespan not yet started)."""
    return create_app(settings, models)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process, lifespan (migrations) run."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


CSRF_META = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')


async def csrf_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Load a page like a browser does and return the htmx headers it would send."""
    page = await client.get("/")
    match = CSRF_META.search(page.text)
    assert match, "page carries no CSRF token"
    return {"X-CSRF-Token": match.group(1), "HX-Request": "true"}

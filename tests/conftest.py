"""Shared fixtures: two fake vLLM servers (base and chat), a migrated database, the app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.engines.fake_vllm import FakeConfig, FakeServer
from app.main import create_app

# A port nothing listens on: connections are refused at once.
DEAD_URL = "http://127.0.0.1:9/v1"


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


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh SQLite database file per test."""
    return f"sqlite:///{tmp_path / 'test.db'}"


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

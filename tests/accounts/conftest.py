"""Team-mode fixtures: an app with accounts, and signed-in clients for each role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.accounts.service import AccountService
from app.config import ModelsFile, Settings
from app.identity.models import Role
from app.main import create_app
from app.web.state import AppState

PASSWORD = "correct horse battery"
CSRF_META = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')
Maker = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def team_settings(settings: Settings) -> Settings:
    """Team mode, limits off (tests that need them turn them on)."""
    return settings.model_copy(update={"auth": "team", "comparisons_per_minute": 0,
                                       "tokens_per_day": 0})  # fmt: skip


@pytest.fixture
async def team_app(team_settings: Settings, models: ModelsFile) -> AsyncIterator[FastAPI]:
    """The app in team mode, lifespan running."""
    app = create_app(team_settings, models)
    async with LifespanManager(app) as manager:
        app.state.asgi = manager.app  # what clients talk to (the lifespan's state included)
        yield app


def state_of(app: Any) -> AppState:
    """The app's resources (sessions, settings)."""
    state: AppState = app.state.playground
    return state


async def add_account(app: Any, username: str, role: Role = Role.RATER) -> int:
    """Create an account straight in the database; its id."""
    async with state_of(app).sessions() as session:
        account = await AccountService(session).create(username, PASSWORD, role)
        await session.commit()
        return account.id


async def csrf_token(client: httpx.AsyncClient, path: str = "/login") -> str:
    """The CSRF token a page carries (and its cookie, now in the client)."""
    page = await client.get(path)
    match = CSRF_META.search(page.text)
    assert match, page.text[:300]
    return match.group(1)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    """Post the sign-in form like a browser."""
    token = await csrf_token(client)
    form = {"username": username, "password": password, "csrf_token": token, "next": "/"}
    return await client.post("/login", data=form)


@pytest.fixture
async def make_client(team_app: FastAPI) -> AsyncIterator[Maker]:
    """Clients with their own cookies: anonymous, or signed in as a new account of a role."""
    opened: list[httpx.AsyncClient] = []

    async def make(username: str | None = None, role: Role = Role.RATER) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=team_app.state.asgi)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append(client)
        if username is not None:
            await add_account(team_app, username, role)
            response = await sign_in(client, username)
            assert response.status_code == 303, response.text
            token = await csrf_token(client, "/account")
            client.headers["X-CSRF-Token"] = token
        return client

    yield make
    for client in opened:
        await client.aclose()


async def compare(client: httpx.AsyncClient, models: ModelsFile, **extra: Any) -> dict[str, Any]:
    """Run a comparison through the JSON API (waits for both answers)."""
    names = [m.name for m in models.models][:2]
    body = {"prompt": "Say hi", "models": names, "params": {"max_tokens": 8}, **extra}
    response = await client.post("/api/v1/comparisons", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data

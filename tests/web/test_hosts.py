"""Host header checks against DNS rebinding: only the allowed host names get an answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from app.config import ModelsFile, Settings
from app.main import create_app


@asynccontextmanager
async def app_at(
    settings: Settings, models: ModelsFile, allowed: list[str] | None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app allowing these hosts (None: the default), lifespan run."""
    app = create_app(settings.model_copy(update={"allowed_hosts": allowed}), models)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


async def status_for(client: httpx.AsyncClient, host: str, path: str = "/") -> int:
    response = await client.get(path, headers={"Host": host})
    return response.status_code


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST.", "::1"]
)
async def test_the_default_answers_to_the_localhost_names(
    settings: Settings, models: ModelsFile, host: str
) -> None:
    async with app_at(settings, models, None) as client:
        assert await status_for(client, host) == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "[::2]:8000",
        "",
        "testserver",
    ],
)
async def test_the_default_refuses_other_hosts_with_a_clear_400(
    settings: Settings, models: ModelsFile, host: str
) -> None:
    async with app_at(settings, models, None) as client:
        for path in ("/", "/api/v1/models", "/docs", "/openapi.json", "/static/htmx.min.js"):
            response = await client.get(path, headers={"Host": host})
            assert response.status_code == 400, (path, response.text)
            assert "PLAYGROUND_ALLOWED_HOSTS" in response.json()["detail"]
        posted = await client.post(
            "/api/v1/comparisons", json={"prompt": "hi"}, headers={"Host": host}
        )
        assert posted.status_code == 400


async def test_health_probes_answer_whatever_the_host(
    settings: Settings, models: ModelsFile
) -> None:
    """Compose and load-balancer probes use whatever address they have (/healthz tells nothing)."""
    async with app_at(settings, models, None) as client:
        assert await status_for(client, "172.18.0.5:8000", "/healthz") == 200


async def test_configured_hosts_and_subdomain_wildcards(
    settings: Settings, models: ModelsFile
) -> None:
    allowed = ["playground.example.org", "*.corp.example", "[::1]"]
    async with app_at(settings, models, allowed) as client:
        for host in ("playground.example.org", "Playground.Example.Org:443", "a.corp.example",
                     "b.a.corp.example", "[::1]:8000"):  # fmt: skip
            assert await status_for(client, host) == 200, host
        for host in ("localhost", "corp.example", "evilcorp.example", "example.org"):
            assert await status_for(client, host) == 400, host


async def test_a_star_answers_to_any_host(settings: Settings, models: ModelsFile) -> None:
    async with app_at(settings, models, ["*"]) as client:
        assert await status_for(client, "anything.example") == 200


def test_the_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_ALLOWED_HOSTS", " app , playground.example.org,,")
    assert Settings().allowed_hosts == ["app", "playground.example.org"]
    monkeypatch.delenv("PLAYGROUND_ALLOWED_HOSTS")
    assert Settings().resolved_allowed_hosts() == ["localhost", "127.0.0.1", "::1"]


def test_production_requires_allowed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAYGROUND_ALLOWED_HOSTS")
    with pytest.raises(ValidationError, match="PLAYGROUND_ALLOWED_HOSTS"):
        Settings(env="production", secret_key="k" * 32)
    settings = Settings(env="production", secret_key="k" * 32, allowed_hosts="app,example.org")
    assert settings.resolved_allowed_hosts() == ["app", "example.org"]

"""The catalog's JSON API: models with their parents, and adding a LoRA adapter at runtime."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.generation import adapters
from playground_tools.fake_vllm import FakeServer
from tests.catalog.helpers import app_client, make_adapter


@pytest.fixture
def adapter_path(tmp_path: Path) -> str:
    return make_adapter(tmp_path / "tuned")


async def add(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/api/v1/adapters", json=body)


async def names(client: httpx.AsyncClient) -> list[str]:
    return [m["name"] for m in (await client.get("/api/v1/models")).json()]


async def test_models_lists_configured_models_in_order(
    client: httpx.AsyncClient, models: ModelsFile
) -> None:
    response = await client.get("/api/v1/models")
    assert response.status_code == 200
    listed = response.json()
    assert [m["name"] for m in listed] == [m.name for m in models.models]
    base = models.models[0]
    assert listed[0] == {
        "name": base.name,
        "kind": base.kind.value,
        "model": base.model,
        "url": base.url,
        "revision": base.revision,
        "description": base.description,
        "parent": None,
    }


async def test_models_never_shows_an_api_key(settings: Settings, models: ModelsFile) -> None:
    secret = "sk-very-secret-key-0123456789"
    keyed = [models.models[0].model_copy(update={"api_key": secret}), *models.models[1:]]
    async with app_client(settings, ModelsFile(models=keyed)) as client:
        response = await client.get("/api/v1/models")
        openapi = await client.get("/openapi.json")
    assert response.status_code == 200
    assert secret not in response.text
    assert all("api_key" not in m for m in response.json())
    assert "api_key" not in openapi.json()["components"]["schemas"]["ModelOut"]["properties"]


async def test_an_adapter_in_the_models_file_shows_its_parent(
    settings: Settings, models: ModelsFile, base_server: FakeServer, adapter_path: str
) -> None:
    base_server.config.lora_modules = {"tuned": adapter_path}
    adapter = ModelConfig(name="tuned", kind=ModelKind.CHAT, adapter_of="base", source=adapter_path)
    async with app_client(settings, models.with_model(adapter)) as client:
        listed = {m["name"]: m for m in (await client.get("/api/v1/models")).json()}
    assert listed["tuned"]["parent"] == "base"
    assert listed["tuned"]["url"] == base_server.base_url
    assert listed["tuned"]["model"] == "tuned"


async def test_a_servers_own_adapters_show_the_parent_it_reports(
    settings: Settings, models: ModelsFile, base_server: FakeServer
) -> None:
    base_server.config.lora_modules = {"side": "/adapters/side"}
    side = ModelConfig(name="side", kind=ModelKind.CHAT, url=base_server.base_url, model="side")
    async with app_client(settings, models.with_model(side)) as client:
        listed = {m["name"]: m["parent"] for m in (await client.get("/api/v1/models")).json()}
    # The server names its parent by served name; the entry serving it is "base".
    assert listed == {"base": None, "chat": None, "down": None, "side": "base"}
    alone = ModelsFile(models=[side])
    async with app_client(settings, alone) as client:
        only = (await client.get("/api/v1/models")).json()
    assert only[0]["parent"] == "tiny-base"  # no entry serves it: the served name


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


async def test_a_silent_server_does_not_hold_up_the_listing(
    settings: Settings, models: ModelsFile, silent_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapters, "DISCOVERY_TIMEOUT_SECONDS", 0.2)
    silent = ModelConfig(name="silent", kind=ModelKind.BASE, url=silent_url, model="s")
    async with app_client(settings, models.with_model(silent)) as client:
        started = time.monotonic()
        response = await client.get("/api/v1/models")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert [m["parent"] for m in response.json()] == [None] * 4
    assert elapsed < 2


async def test_an_added_adapter_is_a_model_at_once(
    client: httpx.AsyncClient, base_server: FakeServer, adapter_path: str
) -> None:
    base_server.config.runtime_lora_updating = True
    response = await add(client, name="tuned", path=adapter_path, base="base", kind="chat")
    assert response.status_code == 201, response.text
    assert response.json() == {
        "name": "tuned",
        "kind": "chat",
        "model": "tuned",
        "url": base_server.base_url,
        "revision": None,
        "description": None,
        "parent": "base",
    }
    assert base_server.config.lora_modules == {"tuned": adapter_path}
    listed = (await client.get("/api/v1/models")).json()
    assert listed[-1]["name"] == "tuned" and listed[-1]["parent"] == "base"
    compared = await client.post(
        "/api/v1/comparisons",
        json={"prompt": "Hello", "models": ["base", "tuned"], "params": {"max_tokens": 4}},
    )
    assert compared.status_code == 201, compared.text
    # Both columns went to the base model's server: the adapter as a chat model, by its name.
    sent = sorted((r["body"]["model"], "messages" in r["body"]) for r in base_server.requests)
    assert sent == [("tiny-base", False), ("tuned", True)]


async def test_the_kind_defaults_to_chat(
    client: httpx.AsyncClient, base_server: FakeServer, adapter_path: str
) -> None:
    base_server.config.runtime_lora_updating = True
    response = await add(client, name="tuned", path=adapter_path, base="base")
    assert response.status_code == 201 and response.json()["kind"] == "chat"


async def test_a_taken_name_is_a_conflict(
    client: httpx.AsyncClient, base_server: FakeServer, adapter_path: str
) -> None:
    base_server.config.runtime_lora_updating = True
    response = await add(client, name="chat", path=adapter_path, base="base")
    assert response.status_code == 409
    assert response.json() == {"detail": "a model named 'chat' already exists"}
    assert base_server.config.lora_modules == {}  # the server was not asked
    assert (await add(client, name="tuned", path=adapter_path, base="base")).status_code == 201
    again = await add(client, name="tuned", path=adapter_path, base="base")
    assert again.status_code == 409


async def test_a_name_the_server_already_serves_is_a_conflict(
    client: httpx.AsyncClient, base_server: FakeServer, adapter_path: str
) -> None:
    base_server.config.runtime_lora_updating = True
    base_server.config.lora_modules = {"tuned": adapter_path}
    response = await add(client, name="tuned", path=adapter_path, base="base")
    assert response.status_code == 409
    assert "the server of base already serves 'tuned'" in response.json()["detail"]
    assert "tuned" not in await names(client)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"base": "nope"}, "base: no model named 'nope'"),
        ({"name": "has space"}, "name: String should match pattern"),
        ({"path": ""}, "path: String should have at least 1 character"),
        ({"kind": "other"}, "kind: Input should be 'base' or 'chat'"),
        ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, adapter_path: str, body: dict[str, Any], detail: str
) -> None:
    response = await add(client, **({"name": "tuned", "path": adapter_path, "base": "base"} | body))
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)
    assert "tuned" not in await names(client)


async def test_an_adapter_cannot_be_a_base(
    client: httpx.AsyncClient, base_server: FakeServer, adapter_path: str
) -> None:
    base_server.config.runtime_lora_updating = True
    assert (await add(client, name="tuned", path=adapter_path, base="base")).status_code == 201
    response = await add(client, name="deeper", path=adapter_path, base="tuned")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "base: 'tuned' is itself an adapter (of 'base'); name a model"
    )


async def test_only_json_is_accepted(client: httpx.AsyncClient, adapter_path: str) -> None:
    response = await client.post(
        "/api/v1/adapters", data={"name": "tuned", "path": adapter_path, "base": "base"}
    )
    assert response.status_code == 415


async def test_a_server_without_runtime_loading_is_502_and_nothing_is_added(
    client: httpx.AsyncClient, adapter_path: str
) -> None:
    response = await add(client, name="tuned", path=adapter_path, base="base")
    assert response.status_code == 502
    assert response.json()["detail"].startswith(
        "the server of base does not load adapters at runtime: start vLLM with --enable-lora"
    )
    assert "tuned" not in await names(client)


async def test_an_adapter_the_server_refuses_is_502_with_its_reason(
    client: httpx.AsyncClient, base_server: FakeServer, tmp_path: Path
) -> None:
    base_server.config.runtime_lora_updating = True
    response = await add(client, name="tuned", path=str(tmp_path / "nowhere"), base="base")
    assert response.status_code == 502
    assert response.json()["detail"].endswith("No adapter found for <path>")
    assert "tuned" not in await names(client)


async def test_a_base_whose_server_is_down_is_502(
    client: httpx.AsyncClient, adapter_path: str
) -> None:
    response = await add(client, name="tuned", path=adapter_path, base="down")
    assert response.status_code == 502
    assert response.json()["detail"].startswith("cannot connect to down at")


async def test_openapi_documents_the_catalog_but_not_its_page(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/api/v1/models"]) == {"get"}
    assert set(paths["/api/v1/adapters"]) == {"post"}
    assert "/models" not in paths and "/models/adapters" not in paths

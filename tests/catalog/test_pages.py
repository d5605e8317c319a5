"""The Models page: every model with kind, served name and parent; the CSRF-protected form."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from playground_tools.fake_vllm import FakeServer
from tests.catalog.helpers import app_client, make_adapter
from tests.conftest import csrf_headers


@pytest.fixture
def adapter_path(tmp_path: Path) -> str:
    return make_adapter(tmp_path / "tuned")


def row_of(page: str, name: str) -> list[str]:
    """The cells of the models table row whose first cell is `name`."""
    for row in re.findall(r"<tr>(.*?)</tr>", page, flags=re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row)]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row for {name}")


async def test_the_page_lists_models_with_their_parents(
    settings: Settings, models: ModelsFile, base_server: FakeServer, adapter_path: str
) -> None:
    adapter = ModelConfig(name="tuned", kind=ModelKind.CHAT, adapter_of="base", source=adapter_path)
    base_server.config.lora_modules = {"tuned": adapter_path}
    async with app_client(settings, models.with_model(adapter)) as client:
        page = await client.get("/models")
    assert page.status_code == 200
    assert row_of(page.text, "base") == ["base", "base", "tiny-base", "—", base_server.base_url]
    assert row_of(page.text, "tuned") == ["tuned", "chat", "tuned", "base", base_server.base_url]
    assert row_of(page.text, "down")[3] == "—"  # its server is down: no parent, no error
    assert '<a href="/models">Models</a>' in page.text
    assert 'name="csrf_token"' in page.text
    # Only models, not adapters, can be a base.
    assert re.findall(r'<option value="([^"]+)">', page.text) == ["base", "chat", "down"]


async def test_adding_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, base_server: FakeServer, adapter_path: str
) -> None:
    base_server.config.runtime_lora_updating = True
    form = {"name": "tuned", "path": adapter_path, "base": "base", "kind": "chat"}
    refused = await client.post("/models/adapters", data=form, headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert base_server.config.lora_modules == {}
    assert "tuned" not in (await client.get("/models")).text


async def test_the_form_adds_the_adapter_and_returns_to_the_page(
    client: httpx.AsyncClient, base_server: FakeServer, adapter_path: str
) -> None:
    base_server.config.runtime_lora_updating = True
    headers = await csrf_headers(client)
    form = {"name": "tuned", "path": adapter_path, "base": "base", "kind": "base"}
    added = await client.post("/models/adapters", data=form, headers=headers)
    assert added.status_code == 204
    assert added.headers["HX-Location"] == "/models"
    page = (await client.get("/models")).text
    assert row_of(page, "tuned") == ["tuned", "base", "tuned", "base", base_server.base_url]
    # A plain form post (no htmx) is redirected back to the page.
    token = headers["X-CSRF-Token"]
    plain = await client.post(
        "/models/adapters", data=form | {"name": "tuned-2", "csrf_token": token}
    )
    assert plain.status_code == 303 and plain.headers["location"] == "/models"


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"base": "nope"}, 422, "base: no model named &#39;nope&#39;"),
        ({"name": ""}, 422, "name: Field required"),
        ({"name": "chat"}, 409, "a model named &#39;chat&#39; already exists"),
    ],
)
async def test_form_errors_are_shown_where_the_user_acted(
    client: httpx.AsyncClient,
    base_server: FakeServer,
    adapter_path: str,
    form: dict[str, str],
    status: int,
    message: str,
) -> None:
    base_server.config.runtime_lora_updating = True
    headers = await csrf_headers(client)
    data = {"name": "tuned", "path": adapter_path, "base": "base", "kind": "chat"} | form
    response = await client.post("/models/adapters", data=data, headers=headers)
    assert response.status_code == status
    assert response.headers["HX-Retarget"] == "#flash"
    assert message in response.text
    assert base_server.config.lora_modules == {}


async def test_a_server_without_runtime_loading_is_explained_in_the_page(
    client: httpx.AsyncClient, adapter_path: str
) -> None:
    headers = await csrf_headers(client)
    form = {"name": "tuned", "path": adapter_path, "base": "base", "kind": "chat"}
    response = await client.post("/models/adapters", data=form, headers=headers)
    assert response.status_code == 502
    assert "does not load adapters at runtime" in response.text

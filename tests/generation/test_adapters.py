"""Runtime LoRA loading and parent discovery against the fake server, which answers as vLLM does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.config import ModelConfig, ModelKind, ModelsFile
from app.generation.adapters import (
    AdapterExists,
    AdapterLoadingDisabled,
    load_adapter,
    served_parents,
)
from app.generation.errors import ModelServerError, ServerUnavailable
from app.generation.http import max_model_len, tokenize_text
from playground_tools.fake_vllm import FakeServer
from tests.conftest import DEAD_URL


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def adapter_path(tmp_path: Path) -> str:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    return str(tmp_path)


def parent_on(server: FakeServer) -> ModelConfig:
    return ModelConfig(name="base", kind=ModelKind.BASE, url=server.base_url, model="tiny-base")


async def test_a_loaded_adapter_is_listed_with_its_parent_and_answers(
    http: httpx.AsyncClient, base_server: FakeServer, adapter_path: str
) -> None:
    base_server.config.runtime_lora_updating = True
    parent = parent_on(base_server)
    await load_adapter(http, parent, "tuned", adapter_path)
    assert await served_parents(http, parent) == {"tuned": "tiny-base"}
    cards = httpx.get(f"{base_server.base_url}/models").json()["data"]
    assert cards[1]["root"] == adapter_path and cards[1]["max_model_len"] is None
    answer = httpx.post(
        f"{base_server.base_url}/completions", json={"model": "tuned", "prompt": "Hi"}
    ).json()
    assert answer["model"] == "tuned" and answer["choices"][0]["text"]
    listed = ModelConfig(name="tuned", kind=ModelKind.CHAT, adapter_of="base", source=adapter_path)
    adapter = ModelsFile(models=[parent, listed]).get("tuned")
    assert adapter is not None and adapter.url == parent.url
    # An adapter's card has no context size: its parent's applies.
    assert await max_model_len(http, adapter) == base_server.config.max_model_len
    assert (await tokenize_text(http, adapter, "Hi there")).count == 2


async def test_runtime_loading_off_is_said_plainly(
    http: httpx.AsyncClient, base_server: FakeServer, adapter_path: str
) -> None:
    with pytest.raises(AdapterLoadingDisabled) as caught:
        await load_adapter(http, parent_on(base_server), "tuned", adapter_path)
    assert "does not load adapters at runtime" in str(caught.value)
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in str(caught.value)
    assert caught.value.status_code == 502


@pytest.mark.parametrize("name", ["tuned", "tiny-base"])
async def test_a_name_the_server_already_serves_is_a_conflict(
    http: httpx.AsyncClient, base_server: FakeServer, adapter_path: str, name: str
) -> None:
    base_server.config.runtime_lora_updating = True
    base_server.config.lora_modules = {"tuned": adapter_path}
    with pytest.raises(AdapterExists) as caught:
        await load_adapter(http, parent_on(base_server), name, adapter_path)
    assert caught.value.status_code == 409
    assert f"the server of base already serves {name!r}" in str(caught.value)


async def test_an_adapter_the_server_cannot_find_is_refused_with_its_message(
    http: httpx.AsyncClient, base_server: FakeServer, tmp_path: Path
) -> None:
    base_server.config.runtime_lora_updating = True
    missing = str(tmp_path / "missing")
    with pytest.raises(ModelServerError) as caught:
        await load_adapter(http, parent_on(base_server), "tuned", missing)
    assert str(caught.value) == (
        f"the server of base could not load adapter 'tuned' from {missing} (HTTP 404): "
        "Loading lora tuned failed: No adapter found for <path>"
    )
    assert await served_parents(http, parent_on(base_server)) == {}


async def test_an_unreachable_server_is_unavailable_and_lists_no_parents(
    http: httpx.AsyncClient,
) -> None:
    dead = ModelConfig(name="down", kind=ModelKind.BASE, url=DEAD_URL, model="m")
    with pytest.raises(ServerUnavailable, match="cannot connect to down"):
        await load_adapter(http, dead, "tuned", "/x")
    assert await served_parents(http, dead) == {}


async def test_the_fake_unloads_like_vllm(base_server: FakeServer, adapter_path: str) -> None:
    base_server.config.runtime_lora_updating = True
    base_server.config.lora_modules = {"tuned": adapter_path}
    url = f"{base_server.base_url}/unload_lora_adapter"
    assert httpx.post(url, json={"lora_name": "tuned"}).status_code == 200
    again = httpx.post(url, json={"lora_name": "tuned"})
    assert again.status_code == 404
    assert again.json()["message"] == "The lora adapter 'tuned' cannot be found."
    gone = httpx.post(f"{base_server.base_url}/completions", json={"model": "tuned", "prompt": "x"})
    assert gone.status_code == 404


def test_the_fake_takes_lora_modules_as_vllm_does() -> None:
    from playground_tools.fake_vllm import _lora_modules

    assert _lora_modules(["a=/ad/a", "b=org/b"]) == {"a": "/ad/a", "b": "org/b"}
    with pytest.raises(SystemExit, match="--lora-modules wants NAME=PATH, not 'bad'"):
        _lora_modules(["bad"])

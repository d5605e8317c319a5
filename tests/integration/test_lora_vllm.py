"""LoRA adapters on real vLLM: a server the playground launches serves a configured adapter, and
one added at runtime through the app's API; both answer and list their parent.

The server is launched by the playground's own launcher (app/generation/launcher.py) from a
models file, so this also proves its LoRA flags work; it starts once for this module only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.generation.launcher import LaunchSettings, LocalServers
from app.main import create_app
from tests.integration.conftest import LOG_DIR, MAX_MODEL_LEN, VLLM_PYTHON, TinyModels

GREEDY = {"max_tokens": 12, "temperature": 0, "seed": 7}


@pytest.fixture(scope="module")
def launched(tiny_models: TinyModels) -> Iterator[tuple[LocalServers, ModelsFile]]:
    """The tiny base model launched with its adapter, as `playground serve` would launch it."""
    configured = ModelsFile(
        models=[
            ModelConfig(
                name="base", kind=ModelKind.BASE, source=str(tiny_models.base),
                model="tiny-base", max_model_len=MAX_MODEL_LEN,
                vllm_args=["--distributed-executor-backend", "uni", "--disable-log-stats"],
            ),
            ModelConfig(
                name="tiny-lora", kind=ModelKind.BASE, adapter_of="base",
                source=str(tiny_models.lora),
            ),
        ]
    )  # fmt: skip
    settings = LaunchSettings(
        vllm_python=VLLM_PYTHON, log_dir=LOG_DIR / "lora", startup_timeout=300, gpu=False
    )
    servers = LocalServers(settings, progress=print)
    with pytest.MonkeyPatch.context() as env:
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLM_NO_USAGE_STATS"):
            env.setenv(name, "1")
        # Two cores are shared with the rest of the suite: let the OS place the threads.
        env.setenv("VLLM_CPU_OMP_THREADS_BIND", "nobind")
        try:
            yield servers, servers.start(configured)
        finally:
            servers.close()


@pytest.fixture
def models(launched: tuple[LocalServers, ModelsFile]) -> ModelsFile:
    """The shared `client` fixture serves these models (and no other real server)."""
    return launched[1]


@pytest.fixture
def app(settings: Settings, launched: tuple[LocalServers, ModelsFile]) -> FastAPI:
    """The app as `playground serve` builds it: it knows which servers it launched."""
    servers, models = launched
    return create_app(settings, models, local_servers=servers)


async def compare(client: httpx.AsyncClient, a: str, b: str) -> list[dict[str, Any]]:
    """Both answers of one comparison (the API waits for them)."""
    response = await client.post(
        "/api/v1/comparisons",
        json={"prompt": "The quick brown", "models": [a, b], "params": GREEDY},
    )
    assert response.status_code == 201, response.text
    turn = response.json()["turns"][0]
    return [turn["a"], turn["b"]]


async def test_the_configured_adapter_answers_on_completions(
    client: httpx.AsyncClient, models: ModelsFile
) -> None:
    parent = models.get("base")
    assert parent is not None
    url = parent.url
    base, adapter = await compare(client, "base", "tiny-lora")
    for answer in (base, adapter):
        assert answer["status"] == "done" and answer["error"] is None
        # Both on the one server the launcher started.
        assert answer["endpoint"] == f"{url}/completions"
        assert answer["completion_tokens"] == GREEDY["max_tokens"]
    assert adapter["served_model"] == "tiny-lora"
    # The same greedy request: only the adapter's weights can make the text differ.
    assert adapter["text"] != base["text"]
    # vllm-cpu answers a base request in a batch with an adapter request with the adapter's
    # text now and then; the playground keeps them apart (LoRA isolation), so the base
    # column always says what the base model says alone.
    alone = httpx.post(
        f"{url}/completions",
        json={"model": "tiny-base", "prompt": "The quick brown", **GREEDY},
        timeout=60,
    ).json()["choices"][0]["text"]
    assert base["text"] == alone
    for _ in range(4):
        again_base, again_adapter = await compare(client, "base", "tiny-lora")
        assert (again_base["text"], again_adapter["text"]) == (alone, adapter["text"])
    cards = httpx.get(f"{url}/models", timeout=10).json()["data"]
    assert [(c["id"], c["parent"]) for c in cards] == [
        ("tiny-base", None),
        ("tiny-lora", "tiny-base"),
    ]


async def test_an_adapter_added_at_runtime_serves_and_lists_its_parent(
    client: httpx.AsyncClient, tiny_models: TinyModels
) -> None:
    response = await client.post(
        "/api/v1/adapters",
        json={"name": "tiny-lora-2", "path": str(tiny_models.lora), "base": "base", "kind": "base"},
    )
    assert response.status_code == 201, response.text
    configured, added = await compare(client, "tiny-lora", "tiny-lora-2")
    assert added["status"] == "done" and added["served_model"] == "tiny-lora-2"
    # The same weights under another name: the same greedy answer.
    assert added["text"] == configured["text"]
    listed = {m["name"]: m["parent"] for m in (await client.get("/api/v1/models")).json()}
    assert listed == {"base": None, "tiny-lora": "base", "tiny-lora-2": "base"}
    again = await client.post(
        "/api/v1/adapters",
        json={"name": "tiny-lora", "path": str(tiny_models.lora), "base": "base"},
    )
    assert again.status_code == 409

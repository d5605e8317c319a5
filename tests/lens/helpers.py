"""Helpers for the token-lens tests: a chat answer with its tokens, from a fake chat server."""

from __future__ import annotations

from typing import Any

import httpx

from app.config import ModelConfig, ModelKind, ModelsFile
from playground_tools.fake_vllm import FakeServer
from tests.conftest import DEAD_URL


def lens_models(base_server: FakeServer, chat_server: FakeServer) -> ModelsFile:
    """Base and chat on the fakes, and a base and a chat model whose servers are down."""
    return ModelsFile(
        models=[
            ModelConfig(name="base", kind=ModelKind.BASE, url=base_server.base_url,
                        model="tiny-base"),
            ModelConfig(name="chat", kind=ModelKind.CHAT, url=chat_server.base_url,
                        model="tiny-chat"),
            ModelConfig(name="gone", kind=ModelKind.BASE, url=DEAD_URL, model="gone"),
            ModelConfig(name="down", kind=ModelKind.CHAT, url=DEAD_URL, model="nothing"),
        ]
    )  # fmt: skip


async def chat_response(
    http: httpx.AsyncClient, chat: ModelConfig, prompt: str, **fields: Any
) -> dict[str, Any]:
    """A greedy chat answer with logprobs and token ids, as the whole JSON body."""
    body = {
        "model": chat.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 2,
        "return_token_ids": True,
        **fields,
    }
    response = await http.post(f"{chat.server_url}/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def tokens_of(client: httpx.AsyncClient, generation_id: int) -> list[dict[str, Any]]:
    """A stored generation's tokens, through the JSON API."""
    response = await client.get(f"/api/v1/generations/{generation_id}/tokens")
    assert response.status_code == 200, response.text
    tokens: list[dict[str, Any]] = response.json()
    return tokens

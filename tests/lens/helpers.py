"""Helpers for the token-lens tests: a chat answer with its tokens, from a fake chat server."""

from __future__ import annotations

from typing import Any

import httpx

from app.config import ModelConfig


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

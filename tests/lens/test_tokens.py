"""The token view: logprobs read from completions and chat responses, whole and streamed."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from app.config import ModelsFile
from app.generation.errors import MalformedResponse
from app.generation.logprobs import TokenInfo, generated_token_ids, token_view, without_stop_token
from playground_tools.fake_vllm import FakeServer
from tests.lens.helpers import chat_response


async def post(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(url, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def stream_chunks(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> list[Any]:
    """A streamed response's data payloads, parsed ("[DONE]" kept as the string)."""
    chunks: list[Any] = []
    async with http.stream("POST", url, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                chunks.append(data if data == "[DONE]" else json.loads(data))
    return chunks


async def test_completion_tokens_from_a_whole_response(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer
) -> None:
    base = models.models[0]
    body = {"model": base.model, "prompt": "The town", "max_tokens": 5, "logprobs": 3, "seed": 1}
    answer = await post(http, f"{base.server_url}/completions", body)
    raw = answer["choices"][0]["logprobs"]
    tokens = token_view(answer)
    assert [t.token for t in tokens] == raw["tokens"]
    assert "".join(t.token for t in tokens) == answer["choices"][0]["text"]
    assert [t.logprob for t in tokens] == raw["token_logprobs"]
    for token, top in zip(tokens, raw["top_logprobs"], strict=True):
        assert sorted(token.top) == sorted(top.items())
        assert [lp for _, lp in token.top] == sorted(top.values(), reverse=True)
        assert token.token_id is None  # not asked for


async def test_streamed_completion_gives_the_same_tokens(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer
) -> None:
    base = models.models[0]
    url = f"{base.server_url}/completions"
    body = {"model": base.model, "prompt": "The town", "max_tokens": 6, "logprobs": 2, "seed": 9}
    whole = token_view(await post(http, url, body))
    chunks = await stream_chunks(http, url, body | {"stream_options": {"include_usage": True}})
    assert chunks[-1] == "[DONE]" and chunks[-2]["choices"] == []  # usage chunk, then [DONE]
    assert token_view(chunks) == whole
    assert len(whole) == 6


async def test_chat_tokens_with_ids_and_the_end_token(
    http: httpx.AsyncClient, models: ModelsFile, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 5
    chat = models.models[1]
    answer = await chat_response(http, chat, "Tell me about rivers.")
    [choice] = answer["choices"]
    tokens = token_view(answer)
    raw = choice["logprobs"]["content"]
    assert [t.token for t in tokens] == [entry["token"] for entry in raw]
    assert [t.token_id for t in tokens] == choice["token_ids"]
    assert all(len(t.top) == 2 for t in tokens)
    # The finished answer ends with its end-of-sequence token, which has no text.
    text_tokens = without_stop_token(tokens, choice["finish_reason"], choice["stop_reason"])
    assert len(text_tokens) == len(tokens) - 1
    assert "".join(t.token for t in text_tokens) == choice["message"]["content"]
    assert generated_token_ids(answer) == choice["token_ids"]


async def test_streamed_chat_gives_the_same_tokens_and_ids(
    http: httpx.AsyncClient, models: ModelsFile, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 4
    chat = models.models[1]
    whole = await chat_response(http, chat, "Hi")
    body = {
        "model": chat.model,
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 2,
        "return_token_ids": True,
    }
    chunks = await stream_chunks(http, f"{chat.server_url}/chat/completions", body)
    assert token_view(chunks) == token_view(whole)
    assert generated_token_ids(chunks) == whole["choices"][0]["token_ids"]


async def test_tokens_sent_as_ids_keep_their_text(
    http: httpx.AsyncClient, models: ModelsFile, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 4
    chat = models.models[1]
    plain = token_view(await chat_response(http, chat, "Hi"))
    as_ids = await chat_response(
        http, chat, "Hi", return_token_ids=False, return_tokens_as_token_ids=True
    )
    coded = token_view(as_ids)
    assert [(t.token, t.token_id) for t in coded] == [(t.token, t.token_id) for t in plain]


def test_alternatives_come_best_first_whatever_the_server_order() -> None:
    # vLLM lists the chosen token first among a chat token's top_logprobs, likelier or not.
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {"content": " is"},
                "logprobs": {
                    "content": [
                        {
                            "token": " is",
                            "logprob": -1.5,
                            "bytes": [32, 105, 115],
                            "top_logprobs": [
                                {"token": " is", "logprob": -1.5, "bytes": [32, 105, 115]},
                                {"token": " was", "logprob": -0.4, "bytes": [32, 119, 97, 115]},
                            ],
                        }
                    ]
                },
                "finish_reason": None,
            }
        ]
    }
    [token] = token_view([chunk])
    assert token.top == [(" was", -0.4), (" is", -1.5)]
    assert token.probability == pytest.approx(math.exp(-1.5))


def test_chunks_without_logprobs_give_no_tokens() -> None:
    chunks: list[Any] = [
        {"choices": [{"index": 0, "text": "x", "logprobs": None, "finish_reason": None}]},
        {"choices": [], "usage": {"prompt_tokens": 1}},
        "[DONE]",
    ]
    assert token_view(chunks) == []
    assert generated_token_ids(chunks) is None


@pytest.mark.parametrize(
    "logprobs",
    [
        "nonsense",
        {"tokens": ["a", "b"], "token_logprobs": [-1.0]},
        {"tokens": ["a"], "token_logprobs": ["high"], "top_logprobs": [None]},
        {"content": [{"logprob": -1.0}]},
        {"content": "nope"},
        {"content": [{"token": "a", "logprob": -1, "top_logprobs": [{"logprob": -2}]}]},
    ],
)
def test_malformed_logprobs_raise(logprobs: object) -> None:
    with pytest.raises(MalformedResponse):
        token_view({"choices": [{"index": 0, "logprobs": logprobs}]})


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason", "kept"),
    [("stop", None, 2), ("stop", 128001, 2), ("stop", "\nUser:", 3), ("length", None, 3)],
)
def test_without_stop_token_drops_only_a_stop_token(
    finish_reason: str, stop_reason: int | str | None, kept: int
) -> None:
    tokens = [TokenInfo("a", -0.1), TokenInfo(" b", -0.2), TokenInfo("<|end|>", -0.3)]
    assert without_stop_token(tokens, finish_reason, stop_reason) == tokens[:kept]


def test_token_info_round_trips_through_json() -> None:
    token = TokenInfo(" river", -0.25, [(" river", -0.25), (" road", -1.5)], token_id=4242)
    assert TokenInfo.from_json(json.loads(json.dumps(token.to_json()))) == token
    with pytest.raises(ValueError, match="not a stored token"):
        TokenInfo.from_json({"logprob": -1})

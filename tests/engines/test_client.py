"""ModelClient against scripted HTTP answers (httpx.MockTransport) and the fake vLLM server."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from app.config import ModelConfig, ModelKind
from app.engines.client import (
    EngineError,
    Finished,
    GenerationRequest,
    ModelClient,
    StreamEvent,
    TextDelta,
)
from app.engines.fake_vllm import FakeServer
from app.engines.params import SamplingParams

BASE = ModelConfig(name="b1", kind=ModelKind.BASE, url="http://base.test/v1", model="org/base")
CHAT = ModelConfig(name="c1", kind=ModelKind.CHAT, url="http://chat.test/v1", model="org/chat")
SAMPLING = SamplingParams(max_tokens=8, seed=7).request_fields()
MESSAGES = [{"role": "user", "content": "Hi"}]

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def sse(*payloads: dict[str, Any] | str) -> bytes:
    """An event-stream body: one `data:` line per payload (strings are sent as they are)."""
    lines = [f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads]
    return "".join(lines).encode()


def base_request(model: ModelConfig = BASE) -> GenerationRequest:
    return GenerationRequest(model, dict(SAMPLING), prompt_text="Once upon a time")


def chat_request(model: ModelConfig = CHAT) -> GenerationRequest:
    return GenerationRequest(model, dict(SAMPLING), messages=MESSAGES)


class Recorder:
    """A MockTransport handler answering with a fixed response and keeping the requests."""

    def __init__(self, status: int = 200, content: bytes = b"", **headers: str) -> None:
        self.status = status
        self.content = content
        self.headers = {"content-type": "text/event-stream", **headers}
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.content, headers=self.headers)

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[-1].content)
        return body


async def collect(handler: Handler, request: GenerationRequest) -> list[StreamEvent]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return [event async for event in ModelClient(http).stream(request)]


def completion_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
    return {"id": "cmpl-1", "object": "text_completion", "choices": [choice], "usage": None}


def chat_chunk(content: str, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]}


USAGE_CHUNK = {
    "id": "cmpl-1",
    "object": "text_completion",
    "choices": [],
    "usage": {"prompt_tokens": 4, "total_tokens": 7, "completion_tokens": 3},
}


async def test_base_stream_yields_text_then_finished_with_usage() -> None:
    body = sse(
        completion_chunk(" there"),
        completion_chunk(" was"),
        completion_chunk(" a", finish="length"),
        USAGE_CHUNK,
        "[DONE]",
    )
    handler = Recorder(content=body)
    events = await collect(handler, base_request())
    assert events == [
        TextDelta(" there"),
        TextDelta(" was"),
        TextDelta(" a"),
        Finished("length", 4, 3),
    ]
    sent = handler.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == "http://base.test/v1/completions"
    assert handler.body["prompt"] == "Once upon a time"
    assert "messages" not in handler.body
    assert handler.body["model"] == "org/base"
    assert handler.body["stream"] is True
    assert handler.body["stream_options"] == {"include_usage": True}
    assert {k: handler.body[k] for k in SAMPLING} == SAMPLING


async def test_chat_stream_skips_the_role_chunk_and_reads_delta_content() -> None:
    role = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
    }
    body = sse(role, chat_chunk("Sure."), chat_chunk(" Hi.", finish="stop"), USAGE_CHUNK, "[DONE]")
    handler = Recorder(content=body)
    events = await collect(handler, chat_request())
    assert events == [TextDelta("Sure."), TextDelta(" Hi."), Finished("stop", 4, 3)]
    assert str(handler.requests[0].url) == "http://chat.test/v1/chat/completions"
    assert handler.body["messages"] == MESSAGES
    assert "prompt" not in handler.body


async def test_stream_without_usage_chunk_finishes_with_unknown_counts() -> None:
    body = sse(completion_chunk("x", finish="stop"), "[DONE]")
    assert await collect(Recorder(content=body), base_request()) == [
        TextDelta("x"),
        Finished("stop", None, None),
    ]


async def test_stream_ending_without_done_is_an_engine_error() -> None:
    body = sse(completion_chunk(" there"), completion_chunk(" was", finish="length"))
    with pytest.raises(EngineError, match="closed the stream"):
        await collect(Recorder(content=body), base_request())


async def test_flat_vllm_error_body_becomes_engine_error_with_its_message() -> None:
    message = "This model's maximum context length is 2048 tokens."
    error = {
        "object": "error",
        "message": message,
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    handler = Recorder(400, json.dumps(error).encode(), **{"content-type": "application/json"})
    with pytest.raises(EngineError) as caught:
        await collect(handler, base_request())
    assert message in str(caught.value)
    assert "400" in str(caught.value) and BASE.name in str(caught.value)


async def test_nested_openai_error_body_becomes_engine_error_with_its_message() -> None:
    error = {"error": {"message": "Invalid API key", "type": "auth", "code": 401}}
    handler = Recorder(401, json.dumps(error).encode(), **{"content-type": "application/json"})
    with pytest.raises(EngineError) as caught:
        await collect(handler, chat_request())
    assert "Invalid API key" in str(caught.value)
    assert "401" in str(caught.value)


async def test_non_json_error_body_is_quoted_in_the_engine_error() -> None:
    handler = Recorder(502, b"Bad Gateway from proxy", **{"content-type": "text/plain"})
    with pytest.raises(EngineError, match="Bad Gateway from proxy"):
        await collect(handler, base_request())


async def test_error_chunk_mid_stream_is_an_engine_error_with_its_message() -> None:
    body = sse(
        completion_chunk(" there"),
        {"error": {"message": "engine died", "type": "InternalServerError"}},
        "[DONE]",
    )
    with pytest.raises(EngineError, match="engine died"):
        await collect(Recorder(content=body), base_request())


async def test_flat_error_chunk_mid_stream_is_an_engine_error() -> None:
    body = sse(chat_chunk("Sure"), {"object": "error", "message": "out of memory"}, "[DONE]")
    with pytest.raises(EngineError, match="out of memory"):
        await collect(Recorder(content=body), chat_request())


async def test_malformed_data_line_is_an_engine_error() -> None:
    body = sse(completion_chunk("a"), "{not json", "[DONE]")
    with pytest.raises(EngineError, match="malformed"):
        await collect(Recorder(content=body), base_request())


async def test_connection_refused_is_an_engine_error_naming_the_model() -> None:
    dead = ModelConfig(name="dead", kind=ModelKind.BASE, url="http://127.0.0.1:9/v1", model="x")
    async with httpx.AsyncClient(timeout=5.0) as http:
        with pytest.raises(EngineError) as caught:
            async for _ in ModelClient(http).stream(base_request(dead)):
                pass
    assert "cannot connect" in str(caught.value)
    assert "dead" in str(caught.value) and dead.url in str(caught.value)


async def test_read_timeout_is_an_engine_error_saying_timed_out() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no data", request=request)

    with pytest.raises(EngineError, match="timed out"):
        await collect(slow, base_request())


async def test_chat_template_override_is_sent_only_for_a_chat_model_that_sets_it() -> None:
    template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    templated = CHAT.model_copy(update={"chat_template": template})
    done = sse(chat_chunk("ok", finish="stop"), "[DONE]")
    for model, expected in ((templated, template), (CHAT, None)):
        handler = Recorder(content=done)
        await collect(handler, chat_request(model))
        assert handler.body.get("chat_template") == expected
        assert ("chat_template" in handler.body) is (expected is not None)
    handler = Recorder(content=sse(completion_chunk("ok", finish="stop"), "[DONE]"))
    await collect(handler, base_request())
    assert "chat_template" not in handler.body


async def test_api_key_is_sent_as_bearer_header_and_omitted_without_one() -> None:
    done = sse(completion_chunk("ok", finish="stop"), "[DONE]")
    keyed = BASE.model_copy(update={"api_key": "sk-test-123"})
    handler = Recorder(content=done)
    await collect(handler, base_request(keyed))
    assert handler.requests[0].headers["authorization"] == "Bearer sk-test-123"
    assert "sk-test-123" not in handler.requests[0].content.decode()

    handler = Recorder(content=done)
    await collect(handler, base_request())
    assert "authorization" not in handler.requests[0].headers


async def test_streamed_text_and_usage_match_the_fake_servers_full_answer(
    base_server: FakeServer,
) -> None:
    base_server.config.answer_words = 6
    model = BASE.model_copy(update={"url": base_server.base_url, "model": "tiny-base"})
    request = base_request(model)
    async with httpx.AsyncClient(timeout=5.0) as http:
        events = [event async for event in ModelClient(http).stream(request)]
        full_body = {k: v for k, v in request.body().items() if k != "stream_options"}
        full = (await http.post(request.endpoint, json={**full_body, "stream": False})).json()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == full["choices"][0]["text"]
    assert events[-1] == Finished(
        full["choices"][0]["finish_reason"],
        full["usage"]["prompt_tokens"],
        full["usage"]["completion_tokens"],
    )
    assert sum(isinstance(e, Finished) for e in events) == 1

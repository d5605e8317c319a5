"""ModelClient against scripted HTTP answers (httpx.MockTransport) and the fake vLLM server."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from app.config import ModelConfig, ModelKind
from app.generation.client import (
    Finished,
    GenerationRequest,
    ModelClient,
    ModelServerError,
    StreamEvent,
    TextDelta,
)
from app.generation.logprobs import token_view, without_stop_token
from app.generation.params import SamplingParams
from playground_tools.fake_vllm import FakeServer

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
    with pytest.raises(ModelServerError, match="closed the stream"):
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
    with pytest.raises(ModelServerError) as caught:
        await collect(handler, base_request())
    assert message in str(caught.value)
    assert "400" in str(caught.value) and BASE.name in str(caught.value)


async def test_nested_openai_error_body_becomes_engine_error_with_its_message() -> None:
    error = {"error": {"message": "Invalid API key", "type": "auth", "code": 401}}
    handler = Recorder(401, json.dumps(error).encode(), **{"content-type": "application/json"})
    with pytest.raises(ModelServerError) as caught:
        await collect(handler, chat_request())
    assert "Invalid API key" in str(caught.value)
    assert "401" in str(caught.value)


async def test_non_json_error_body_is_quoted_in_the_engine_error() -> None:
    handler = Recorder(502, b"Bad Gateway from proxy", **{"content-type": "text/plain"})
    with pytest.raises(ModelServerError, match="Bad Gateway from proxy"):
        await collect(handler, base_request())


async def test_error_chunk_mid_stream_is_an_engine_error_with_its_message() -> None:
    body = sse(
        completion_chunk(" there"),
        {"error": {"message": "engine died", "type": "InternalServerError"}},
        "[DONE]",
    )
    with pytest.raises(ModelServerError, match="engine died"):
        await collect(Recorder(content=body), base_request())


async def test_flat_error_chunk_mid_stream_is_an_engine_error() -> None:
    body = sse(chat_chunk("Sure"), {"object": "error", "message": "out of memory"}, "[DONE]")
    with pytest.raises(ModelServerError, match="out of memory"):
        await collect(Recorder(content=body), chat_request())


async def test_malformed_data_line_is_an_engine_error() -> None:
    body = sse(completion_chunk("a"), "{not json", "[DONE]")
    with pytest.raises(ModelServerError, match="malformed"):
        await collect(Recorder(content=body), base_request())


@pytest.mark.parametrize("line", ["[1, 2]", "null", '"text"', "7"])
async def test_a_data_line_that_is_not_an_object_is_an_engine_error(line: str) -> None:
    body = sse(completion_chunk("a"), line, "[DONE]")
    with pytest.raises(ModelServerError, match="not an object"):
        await collect(Recorder(content=body), base_request())


async def test_connection_refused_is_an_engine_error_naming_the_model() -> None:
    dead = ModelConfig(name="dead", kind=ModelKind.BASE, url="http://127.0.0.1:9/v1", model="x")
    async with httpx.AsyncClient(timeout=5.0) as http:
        with pytest.raises(ModelServerError) as caught:
            async for _ in ModelClient(http).stream(base_request(dead)):
                pass
    assert "cannot connect" in str(caught.value)
    assert "dead" in str(caught.value) and dead.url in str(caught.value)


async def test_read_timeout_is_an_engine_error_saying_timed_out() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no data", request=request)

    with pytest.raises(ModelServerError, match="timed out"):
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


# ---------------------------------------------------------------- tokens (the token lens)


def logprob_chunk(
    text: str,
    ident: int,
    value: float,
    finish: str | None = None,
    stop_reason: int | str | None = None,
) -> dict[str, Any]:
    """A streamed completion chunk carrying one token's logprobs and id."""
    chunk = completion_chunk(text, finish)
    chunk["choices"][0] |= {
        "logprobs": {
            "tokens": [text], "token_logprobs": [value],
            "top_logprobs": [{"alt": value - 1.0, text: value}], "text_offset": [0],
        },
        "token_ids": [ident],
        "stop_reason": stop_reason,
    }  # fmt: skip
    return chunk


def chat_logprob_chunk(
    content: str, ident: int, value: float, finish: str | None = None
) -> dict[str, Any]:
    """A streamed chat chunk carrying one token's logprobs and id."""
    chunk = chat_chunk(content, finish)
    entry = {"token": content, "logprob": value, "bytes": list(content.encode()),
             "top_logprobs": [{"token": content, "logprob": value},
                              {"token": "x", "logprob": value - 2.0}]}  # fmt: skip
    chunk["choices"][0] |= {"logprobs": {"content": [entry]}, "token_ids": [ident]}
    return chunk


@pytest.mark.parametrize(
    ("request_for", "fields"),
    [
        (base_request, {"logprobs": 3, "return_token_ids": True}),
        (chat_request, {"logprobs": True, "top_logprobs": 3, "return_token_ids": True}),
    ],
)
async def test_logprobs_are_asked_for_in_each_endpoints_dialect(
    request_for: Callable[[], GenerationRequest], fields: dict[str, Any]
) -> None:
    plain = request_for()
    asking = GenerationRequest(
        plain.model, plain.sampling, plain.prompt_text, plain.messages, top_logprobs=3
    )
    handler = Recorder(content=sse(completion_chunk("ok", finish="stop"), "[DONE]"))
    await collect(handler, asking)
    assert {k: handler.body.get(k) for k in fields} == fields
    assert "top_logprobs" not in handler.body or asking.model.kind is ModelKind.CHAT
    handler = Recorder(content=sse(completion_chunk("ok", finish="stop"), "[DONE]"))
    await collect(handler, plain)
    assert not {"logprobs", "top_logprobs", "return_token_ids"} & set(handler.body)


async def test_base_stream_collects_every_token_and_drops_the_stop_token() -> None:
    body = sse(
        logprob_chunk(" there", 11, -0.5),
        logprob_chunk(" was", 12, -1.5),
        # The end-of-sequence token: counted and scored, but no text (stop_reason None).
        logprob_chunk("", 2, -0.1, finish="stop"),
        USAGE_CHUNK,
        "[DONE]",
    )
    events = await collect(Recorder(content=body), base_request())
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.tokens is not None
    assert [(t.token, t.token_id, t.logprob) for t in finished.tokens] == [
        (" there", 11, -0.5),
        (" was", 12, -1.5),
    ]
    assert finished.tokens[0].top == [(" there", -0.5), ("alt", -1.5)]
    assert "".join(t.token for t in finished.tokens) == "".join(
        e.text for e in events if isinstance(e, TextDelta)
    )


async def test_a_stop_string_ending_keeps_the_last_token() -> None:
    body = sse(
        logprob_chunk(" a", 11, -0.5),
        logprob_chunk(" b", 12, -0.7, finish="stop", stop_reason="END"),
        "[DONE]",
    )
    finished = (await collect(Recorder(content=body), base_request()))[-1]
    assert isinstance(finished, Finished) and finished.tokens is not None
    assert [t.token_id for t in finished.tokens] == [11, 12]
    length = sse(logprob_chunk(" a", 11, -0.5, finish="length"), "[DONE]")
    finished = (await collect(Recorder(content=length), base_request()))[-1]
    assert isinstance(finished, Finished) and finished.tokens is not None
    assert [t.token_id for t in finished.tokens] == [11]


async def test_chat_stream_collects_tokens_with_ids() -> None:
    body = sse(
        chat_logprob_chunk("Sure", 5, -0.2),
        chat_logprob_chunk(" thing", 6, -0.9),
        chat_logprob_chunk("", 2, -0.05, finish="stop"),
        USAGE_CHUNK,
        "[DONE]",
    )
    events = await collect(Recorder(content=body), chat_request())
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.tokens is not None
    assert [(t.token, t.token_id) for t in finished.tokens] == [("Sure", 5), (" thing", 6)]
    assert finished.tokens[1].top == [(" thing", -0.9), ("x", -2.9)]


async def test_no_logprobs_means_no_tokens() -> None:
    body = sse(completion_chunk(" a"), completion_chunk(" b", finish="length"), "[DONE]")
    finished = (await collect(Recorder(content=body), base_request()))[-1]
    assert finished == Finished("length", None, None, None)


@pytest.mark.parametrize(
    "broken",
    [
        {"tokens": "not a list", "token_logprobs": [-1.0]},
        {"tokens": [" b"], "token_logprobs": ["low"]},
        {"tokens": [" b", " c"], "token_logprobs": [-1.0]},
        "not an object",
    ],
)
async def test_malformed_logprobs_do_not_break_the_answer(broken: object) -> None:
    bad = completion_chunk(" b")
    bad["choices"][0]["logprobs"] = broken
    body = sse(logprob_chunk(" a", 11, -0.5), bad, logprob_chunk(" c", 13, -0.3, "length"),
               USAGE_CHUNK, "[DONE]")  # fmt: skip
    events = await collect(Recorder(content=body), base_request())
    assert [e.text for e in events if isinstance(e, TextDelta)] == [" a", " b", " c"]
    # A token view with a hole would misplace every later token: none rather than a wrong one.
    assert events[-1] == Finished("length", 4, 3, None)


async def test_streamed_tokens_match_the_fake_servers_full_answer(
    base_server: FakeServer, chat_server: FakeServer
) -> None:
    for server, kind, name in ((base_server, ModelKind.BASE, "tiny-base"),
                               (chat_server, ModelKind.CHAT, "tiny-chat")):  # fmt: skip
        server.config.answer_words = 7
        model = (BASE if kind is ModelKind.BASE else CHAT).model_copy(
            update={"url": server.base_url, "model": name}
        )
        plain = base_request(model) if kind is ModelKind.BASE else chat_request(model)
        request = GenerationRequest(
            model, {**plain.sampling, "temperature": 0}, plain.prompt_text, plain.messages,
            top_logprobs=2,
        )  # fmt: skip
        async with httpx.AsyncClient(timeout=5.0) as http:
            events = [event async for event in ModelClient(http).stream(request)]
            body = {k: v for k, v in request.body().items() if k != "stream_options"}
            full = (await http.post(request.endpoint, json={**body, "stream": False})).json()
        finished = events[-1]
        assert isinstance(finished, Finished) and finished.tokens is not None
        [choice] = full["choices"]
        expected = without_stop_token(
            token_view(full), choice["finish_reason"], choice.get("stop_reason")
        )
        assert finished.tokens == expected
        assert [t.token_id for t in finished.tokens] == choice["token_ids"][: len(expected)]
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert "".join(t.token for t in finished.tokens) == text

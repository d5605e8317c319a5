"""The fake vLLM server, exercised over real HTTP: text, shapes, streaming and failure modes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.engines.fake_vllm import FakeConfig, FakeServer, create_fake_app, run_fake_server

MODEL = "fake-model"
CHAT = [{"role": "user", "content": "Tell me about rivers."}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    """One real server for the whole module; tests reset it rather than start their own."""
    with run_fake_server() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(server: FakeServer) -> None:
    """Every test starts from the default config and an empty request log."""
    server.reset()


@pytest.fixture(scope="module")
def client(server: FakeServer) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the server's root."""
    with httpx.Client(base_url=server.root_url, timeout=5.0) as http:
        yield http


def complete(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """POST /v1/completions (non-streaming) and return the JSON body, asserting 200."""
    response = client.post("/v1/completions", json={"model": MODEL, "prompt": "The town", **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def chat(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """POST /v1/chat/completions (non-streaming) and return the JSON body, asserting 200."""
    response = client.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": CHAT, **fields}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sse_payloads(raw: str) -> list[str]:
    """The data payloads of an SSE body, checking vLLM's `data: ...` + blank line framing."""
    assert raw.endswith("\n\n")
    events = raw[:-2].split("\n\n")
    assert all(event.startswith("data: ") and "\n" not in event for event in events)
    return [event[len("data: ") :] for event in events]


def stream(client: httpx.Client, path: str, body: dict[str, Any]) -> list[str]:
    """POST a streaming request and return its SSE payloads."""
    response = client.post(path, json={"model": MODEL, "stream": True, **body})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_payloads(response.text)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert a vLLM-style error body with this status; return it."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"object", "message", "type", "param", "code"}
    assert body["object"] == "error"
    assert body["code"] == status
    return body


# ---------------------------------------------------------------- discovery


def test_models_lists_the_served_model_in_vllm_shape(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    [card] = body["data"]
    assert card["id"] == card["root"] == MODEL
    assert card["object"] == "model"
    assert card["owned_by"] == "vllm"
    assert card["parent"] is None
    assert card["max_model_len"] == 2048
    assert isinstance(card["created"], int)


def test_health_is_200_and_empty(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.content == b""


def test_urls_point_at_the_bound_port(server: FakeServer) -> None:
    assert server.port > 0
    assert server.root_url == f"http://127.0.0.1:{server.port}"
    assert server.base_url == server.root_url + "/v1"


# ---------------------------------------------------------------- text


def test_same_seed_gives_same_text_and_another_seed_differs(client: httpx.Client) -> None:
    first = complete(client, seed=1, temperature=0.8, max_tokens=20)["choices"][0]["text"]
    again = complete(client, seed=1, temperature=0.8, max_tokens=20)["choices"][0]["text"]
    other = complete(client, seed=2, temperature=0.8, max_tokens=20)["choices"][0]["text"]
    assert first == again
    assert first != other


def test_greedy_ignores_the_seed(client: httpx.Client) -> None:
    one = chat(client, seed=1, temperature=0)["choices"][0]["message"]["content"]
    two = chat(client, seed=2, temperature=0)["choices"][0]["message"]["content"]
    assert one == two


def test_completion_response_shape_and_continuation(client: httpx.Client) -> None:
    body = complete(client, seed=3, max_tokens=5)
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage"}
    assert body["id"].startswith("cmpl-")
    assert body["object"] == "text_completion"
    assert body["model"] == MODEL
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["logprobs"] is None
    # The prompt "The town" ends mid-sentence: the continuation goes on after a blank.
    assert choice["text"].startswith(" ")
    assert choice["text"][1].islower()
    assert body["usage"]["prompt_tokens"] == 2


def test_completion_after_a_new_line_starts_a_sentence(client: httpx.Client) -> None:
    text = complete(client, prompt="Chapter One\n\n", max_tokens=3)["choices"][0]["text"]
    assert text[0].isupper()


def test_chat_response_shape_and_answer_opening(client: httpx.Client) -> None:
    body = chat(client, seed=3)
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].startswith(("Sure. ", "Here is an answer: "))
    assert choice["logprobs"] is None
    # 4 words plus 3 template tokens for the one message.
    assert body["usage"]["prompt_tokens"] == 7


def test_unconstrained_answer_ends_with_eos(client: httpx.Client, server: FakeServer) -> None:
    server.config.answer_words = 10
    body = chat(client)
    [choice] = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["stop_reason"] is None
    assert len(choice["message"]["content"].split()) == 10
    assert choice["message"]["content"].endswith(".")
    # Like vLLM, the EOS token counts as a completion token although it adds no text.
    assert body["usage"]["completion_tokens"] == 11
    assert body["usage"]["total_tokens"] == 7 + 11


def test_max_tokens_finishes_with_length(client: httpx.Client) -> None:
    body = complete(client, max_tokens=7)
    [choice] = body["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["stop_reason"] is None
    assert body["usage"]["completion_tokens"] == 7
    assert len(choice["text"].split()) == 7


def test_completion_defaults_to_16_tokens_like_vllm(client: httpx.Client) -> None:
    body = complete(client)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 16


def test_stop_string_truncates_before_it(client: httpx.Client) -> None:
    full = complete(client, seed=5, max_tokens=30)["choices"][0]["text"]
    stop = full.split()[6]
    body = complete(client, seed=5, max_tokens=30, stop=["never-there", stop])
    [choice] = body["choices"]
    assert choice["text"] == full[: full.index(stop)]
    assert choice["finish_reason"] == "stop"
    assert choice["stop_reason"] == stop


def test_stop_string_spanning_tokens(client: httpx.Client) -> None:
    full = chat(client, seed=5)["choices"][0]["message"]["content"]
    stop = " ".join(full.split()[3:5])
    content = chat(client, seed=5, stop=stop)["choices"][0]
    assert content["message"]["content"] == full[: full.index(stop)]
    assert content["stop_reason"] == stop


# ---------------------------------------------------------------- streaming


def test_completion_stream_framing(client: httpx.Client) -> None:
    fields = {"prompt": "The town", "seed": 9, "max_tokens": 6}
    payloads = stream(
        client, "/v1/completions", fields | {"stream_options": {"include_usage": True}}
    )
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    *content, finish, usage = chunks
    for chunk in [*content, finish]:
        assert chunk["object"] == "text_completion"
        assert chunk["id"] == chunks[0]["id"]
        [choice] = chunk["choices"]
        assert set(choice) == {"index", "text", "logprobs", "finish_reason", "stop_reason"}
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    assert finish["choices"][0]["finish_reason"] == "length"
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 2, "total_tokens": 8, "completion_tokens": 6}
    streamed = "".join(c["choices"][0]["text"] for c in [*content, finish])
    assert streamed == complete(client, seed=9, max_tokens=6)["choices"][0]["text"]
    assert len(content) + 1 == 6  # one chunk per token


def test_chat_stream_framing(client: httpx.Client, server: FakeServer) -> None:
    server.config.answer_words = 5
    payloads = stream(
        client,
        "/v1/chat/completions",
        {"messages": CHAT, "stream_options": {"include_usage": True}},
    )
    assert payloads[-1] == "[DONE]"
    role, *content, finish, usage = [json.loads(p) for p in payloads[:-1]]
    assert role["object"] == "chat.completion.chunk"
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(set(c["choices"][0]["delta"]) == {"content"} for c in content)
    # The EOS token ends the answer: an empty delta that carries finish_reason.
    assert finish["choices"][0]["delta"] == {"content": ""}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["choices"][0]["stop_reason"] is None
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 6
    streamed = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert streamed == chat(client)["choices"][0]["message"]["content"]


def test_stream_without_include_usage_has_no_usage_chunk(client: httpx.Client) -> None:
    payloads = stream(client, "/v1/chat/completions", {"messages": CHAT, "max_tokens": 3})
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(chunk["choices"] for chunk in chunks)
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_stream_with_stop_string_matches_non_streaming(client: httpx.Client) -> None:
    full = complete(client, seed=4, max_tokens=30)["choices"][0]["text"]
    stop = full.split()[4]
    payloads = stream(
        client, "/v1/completions", {"prompt": "The town", "seed": 4, "max_tokens": 30, "stop": stop}
    )
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == full[: full.index(stop)]
    assert chunks[-1]["choices"][0]["stop_reason"] == stop


def test_token_delay_makes_streaming_observable(client: httpx.Client, server: FakeServer) -> None:
    server.config.token_delay = 0.02
    arrivals: list[float] = []
    body = {"model": MODEL, "prompt": "The town", "max_tokens": 10, "stream": True}
    with client.stream("POST", "/v1/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 11  # 10 tokens and [DONE]
    assert arrivals[-1] - arrivals[0] >= 0.15


def test_client_disconnect_stops_the_stream_quietly(
    client: httpx.Client, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server.config.token_delay = 0.05
    body = {"model": MODEL, "prompt": "The town", "max_tokens": 100, "stream": True}
    with client.stream("POST", "/v1/completions", json=body) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    deadline = time.monotonic() + 2
    while "cancelled by the client" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "cancelled by the client" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---------------------------------------------------------------- errors


def test_unknown_model_is_404(client: httpx.Client) -> None:
    response = client.post("/v1/completions", json={"model": "gpt-9", "prompt": "hi"})
    assert error_of(response, 404) == {
        "object": "error",
        "message": "The model `gpt-9` does not exist.",
        "type": "NotFoundError",
        "param": "model",
        "code": 404,
    }


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/v1/completions", {"prompt": "x", "temperature": -1}, "temperature must be non-negative"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, "max_tokens must be at least 1"),
        ("/v1/completions", {"prompt": "x", "top_p": 0}, "top_p must be in (0, 1]"),
        ("/v1/completions", {"prompt": "x", "top_p": 1.5}, "top_p must be in (0, 1]"),
        ("/v1/completions", {"prompt": "x", "n": 2}, "n must be 1"),
        ("/v1/completions", {"prompt": "x", "temperature": "hot"}, "temperature"),
        ("/v1/completions", {"max_tokens": 5}, "prompt: Field required"),
        ("/v1/chat/completions", {"max_tokens": 5}, "messages: Field required"),
        ("/v1/chat/completions", {"messages": []}, "messages"),
        (
            "/v1/chat/completions",
            {"messages": CHAT, "stream_options": {"include_usage": True}},
            "Stream options can only be defined when `stream=True`.",
        ),
        (
            "/v1/completions",
            {"prompt": "x", "max_tokens": 2048},
            "This model's maximum context length is 2048 tokens. However, you requested 2049",
        ),
    ],
)
def test_invalid_requests_are_400(
    client: httpx.Client, path: str, body: dict[str, Any], fragment: str
) -> None:
    body = error_of(client.post(path, json=body), 400)
    assert body["type"] == "BadRequestError"
    assert body["param"] is None
    assert fragment in body["message"]


def test_malformed_json_is_400(client: httpx.Client, server: FakeServer) -> None:
    response = client.post(
        "/v1/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert "JSON decode error" in error_of(response, 400)["message"]
    assert server.requests == [{"path": "/v1/completions", "body": "{not json"}]


def test_fail_status_answers_every_generation(client: httpx.Client, server: FakeServer) -> None:
    server.config.fail_status = 503
    completion = client.post("/v1/completions", json={"prompt": "x", "stream": True})
    assert error_of(completion, 503)["type"] == "ServiceUnavailableError"
    error_of(client.post("/v1/chat/completions", json={"messages": CHAT}), 503)
    assert client.get("/v1/models").status_code == 200
    assert len(server.requests) == 2


def test_fail_after_tokens_cuts_the_stream(
    client: httpx.Client, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server.config.fail_after_tokens = 3
    body = {"model": MODEL, "messages": CHAT, "stream": True}
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"),
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        received.extend(line for line in response.iter_lines() if line)
    # The role chunk and exactly three tokens arrive; no finish chunk and no [DONE].
    assert len(received) == 4
    chunks = [json.loads(line.removeprefix("data: ")) for line in received]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    # The fake warns in one line; uvicorn's "Exception in ASGI application" traceback is filtered.
    assert "aborting stream" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_fail_after_tokens_without_streaming_is_500(
    client: httpx.Client, server: FakeServer
) -> None:
    server.config.fail_after_tokens = 3
    response = client.post("/v1/completions", json={"prompt": "x"})
    assert error_of(response, 500)["type"] == "InternalServerError"


# ---------------------------------------------------------------- injection, tokenize, control


def test_inject_text_comes_first(client: httpx.Client, server: FakeServer) -> None:
    script = "<script>alert(1)</script>"
    server.config.inject_text = script
    content = chat(client)["choices"][0]["message"]["content"]
    assert content.startswith(script + " ")
    payloads = stream(client, "/v1/completions", {"prompt": "x", "max_tokens": 3})
    assert json.loads(payloads[0])["choices"][0]["text"] == script


def test_tokenize_counts_words_like_usage(client: httpx.Client) -> None:
    prompt = client.post("/tokenize", json={"model": MODEL, "prompt": "one two  three\nfour"})
    assert prompt.json()["count"] == 4
    assert len(prompt.json()["tokens"]) == 4
    assert prompt.json()["max_model_len"] == 2048
    messages = client.post("/tokenize", json={"model": MODEL, "messages": CHAT}).json()
    assert messages["count"] == chat(client, max_tokens=1)["usage"]["prompt_tokens"] == 7
    error_of(client.post("/tokenize", json={"model": MODEL}), 400)
    error_of(client.post("/tokenize", json={"model": "other", "prompt": "x"}), 404)


def test_request_log_records_bodies_in_order(client: httpx.Client, server: FakeServer) -> None:
    complete(client, max_tokens=1)
    chat(client, max_tokens=1, chat_template="{{ messages }}")
    logged = client.get("/fake/requests").json()
    assert [entry["path"] for entry in logged] == ["/v1/completions", "/v1/chat/completions"]
    assert logged[0]["body"] == {"model": MODEL, "prompt": "The town", "max_tokens": 1}
    assert logged[1]["body"]["chat_template"] == "{{ messages }}"
    assert server.requests == logged
    assert client.delete("/fake/requests").status_code == 204
    assert server.requests == []
    assert client.get("/fake/requests").json() == []


def test_config_endpoint_merges_into_the_live_config(
    client: httpx.Client, server: FakeServer
) -> None:
    response = client.post("/fake/config", json={"served_model_name": "other", "answer_words": 3})
    assert response.status_code == 200
    assert server.config.served_model_name == "other"
    assert server.config.answer_words == 3
    assert client.get("/v1/models").json()["data"][0]["id"] == "other"
    error_of(client.post("/fake/config", json={"token_delay": -1}), 400)
    error_of(client.post("/fake/config", json={"no_such_knob": 1}), 400)
    assert server.config.token_delay == 0.0


def test_app_shares_the_config_object_it_was_given() -> None:
    config = FakeConfig(served_model_name="mine")
    app = create_fake_app(config)
    assert app.state.fake.config is config


def test_a_second_server_gets_its_own_port() -> None:
    with run_fake_server(FakeConfig(served_model_name="base")) as other:
        response = httpx.get(other.base_url + "/models", timeout=5.0)
        assert response.json()["data"][0]["id"] == "base"

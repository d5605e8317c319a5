"""The fake vLLM server, exercised over real HTTP: text, shapes, streaming and failure modes."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from playground_tools.fake_vllm import FakeConfig, FakeServer, create_fake_app, run_fake_server

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


# ---------------------------------------------------------------- tokenizer and chat template


def tokenize(client: httpx.Client, **body: Any) -> dict[str, Any]:
    """POST /tokenize and return the JSON body, asserting 200."""
    response = client.post("/tokenize", json={"model": MODEL, **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def detokenize(client: httpx.Client, ids: list[int]) -> str:
    """POST /detokenize and return the text, asserting 200."""
    response = client.post("/detokenize", json={"model": MODEL, "tokens": ids})
    assert response.status_code == 200, response.text
    text: str = response.json()["prompt"]
    return text


@pytest.mark.parametrize(
    "text", ["one two  three\nfour", "Chapter One\n\n", "  indented", "a<|end|>b c", "x", ""]
)
def test_tokenize_and_detokenize_round_trip_exactly(client: httpx.Client, text: str) -> None:
    answer = tokenize(client, prompt=text, return_token_strs=True)
    assert answer["count"] == len(answer["tokens"]) == len(answer["token_strs"])
    assert "".join(answer["token_strs"]) == text
    assert detokenize(client, answer["tokens"]) == text


def test_tokens_are_whitespace_led_words_and_markers(client: httpx.Client) -> None:
    strs = tokenize(client, prompt="The river  runs.\n\nIt<|end|> ends \n", return_token_strs=True)
    assert strs["token_strs"] == ["The", " river", "  runs.", "\n\nIt", "<|end|>", " ends \n"]
    same_word = tokenize(client, prompt="river river")["tokens"]
    assert same_word[0] != same_word[1]  # "river" and " river" are different tokens


def test_token_strs_are_null_unless_asked(client: httpx.Client) -> None:
    assert tokenize(client, prompt="a b")["token_strs"] is None


def test_chat_template_renders_as_documented(client: httpx.Client) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    rendered = "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n"
    assert detokenize(client, tokenize(client, messages=messages)["tokens"]) == (
        rendered + "<|assistant|>\n"
    )
    plain = tokenize(client, messages=messages, add_generation_prompt=False)
    assert detokenize(client, plain["tokens"]) == rendered
    prefill = [*messages, {"role": "assistant", "content": "Sure, here"}]
    opened = tokenize(
        client, messages=prefill, add_generation_prompt=False, continue_final_message=True
    )
    assert detokenize(client, opened["tokens"]) == rendered + "<|assistant|>\nSure, here"
    both = client.post(
        "/tokenize",
        json={"messages": prefill, "add_generation_prompt": True, "continue_final_message": True},
    )
    assert "Cannot set both" in error_of(both, 400)["message"]


def test_chat_usage_counts_the_rendered_template(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "Tell me about rivers."},
        {"role": "assistant", "content": "They flow."},
        {"role": "user", "content": "And lakes?"},
    ]
    body = chat(client, messages=messages, max_tokens=1)
    assert body["usage"]["prompt_tokens"] == tokenize(client, messages=messages)["count"]


def test_vocab_id_gives_the_same_text_other_ids(client: httpx.Client, server: FakeServer) -> None:
    before = tokenize(client, prompt="The old bridge", return_token_strs=True)
    server.config.vocab_id = "another-tokenizer"
    after = tokenize(client, prompt="The old bridge", return_token_strs=True)
    assert after["token_strs"] == before["token_strs"]
    assert not set(after["tokens"]) & set(before["tokens"])


def test_token_id_prompt_continues_like_the_text_prompt(client: httpx.Client) -> None:
    ids = tokenize(client, prompt="The town")["tokens"]
    by_text = complete(client, seed=8, max_tokens=6)
    by_ids = complete(client, prompt=ids, seed=8, max_tokens=6)
    assert by_ids["choices"][0]["text"] == by_text["choices"][0]["text"]
    assert by_ids["usage"] == by_text["usage"]


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        ([], "must be provided and non-empty"),
        ([2**31], "Token id 2147483648 is out of vocabulary"),
        ([5, -1], "greater than or equal to 0"),
        ([[1, 2]], "prompt"),
    ],
)
def test_bad_token_id_prompts_are_400(
    client: httpx.Client, prompt: list[Any], fragment: str
) -> None:
    response = client.post("/v1/completions", json={"model": MODEL, "prompt": prompt})
    assert fragment in error_of(response, 400)["message"]


def test_detokenize_errors_and_unknown_ids(client: httpx.Client) -> None:
    # An id the tokenizer never produced decodes to a placeholder, as a real vocabulary would
    # decode to *something*; one past the vocabulary is refused.
    assert detokenize(client, [12345]) == "<unk>"
    assert (
        "out of vocabulary"
        in error_of(client.post("/detokenize", json={"tokens": [2**31]}), 400)["message"]
    )
    error_of(client.post("/detokenize", json={"model": "other", "tokens": [1]}), 404)
    error_of(client.post("/detokenize", json={"tokens": "1 2"}), 400)


# ---------------------------------------------------------------- logprobs


def word(token: str) -> str:
    """The fake's documented word of a token: no surrounding blanks, no trailing punctuation."""
    return token.strip().rstrip(".,:;!?")


def test_prompt_logprobs_rank_each_token_by_prompt_ranks(
    client: httpx.Client, server: FakeServer
) -> None:
    server.config.prompt_ranks = {"river": 5, "town": 2}
    prompt = "The river town, the old river."
    tokens = tokenize(client, prompt=prompt, return_token_strs=True)
    body = complete(client, prompt=prompt, max_tokens=1, prompt_logprobs=3)
    entries = body["choices"][0]["prompt_logprobs"]
    assert "prompt_logprobs" not in body  # vLLM puts a completion's on the choice
    assert len(entries) == tokens["count"]
    assert entries[0] is None
    pairs = zip(tokens["tokens"][1:], tokens["token_strs"][1:], entries[1:], strict=True)
    for ident, text, entry in pairs:
        expected_rank = server.config.prompt_ranks.get(word(text), 1)
        # vLLM's order: the prompt's own token first, then the top 3 by rank.
        first_key, own = next(iter(entry.items()))
        assert first_key == str(ident)
        assert own["rank"] == expected_rank
        assert own["decoded_token"] == text
        by_rank = sorted(entry.values(), key=lambda lp: lp["rank"])
        assert [lp["rank"] for lp in by_rank] == sorted({1, 2, 3, expected_rank})
        logprobs = [lp["logprob"] for lp in by_rank]
        assert logprobs == sorted(logprobs, reverse=True) and logprobs[0] < 0
        assert sum(math.exp(lp) for lp in logprobs) <= 1


def test_prompt_logprobs_zero_gives_only_the_prompt_tokens(client: httpx.Client) -> None:
    entries = complete(client, max_tokens=1, prompt_logprobs=0)["choices"][0]["prompt_logprobs"]
    assert entries[0] is None
    assert all(len(entry) == 1 for entry in entries[1:])


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        (
            "/v1/completions",
            {"prompt": "x", "prompt_logprobs": 2, "stream": True},
            "`prompt_logprobs` are not available when `stream=True`.",
        ),
        (
            "/v1/completions",
            {"prompt": "x", "prompt_logprobs": 21},
            "Requested prompt logprobs of 21, which is greater than max allowed: 20",
        ),
        (
            "/v1/completions",
            {"prompt": "x", "logprobs": 21},
            "Requested sample logprobs of 21, which is greater than max allowed: 20",
        ),
        ("/v1/completions", {"prompt": "x", "logprobs": -2}, "`logprobs` must be a positive"),
        (
            "/v1/completions",
            {"prompt": "x", "prompt_logprobs": -3},
            "`prompt_logprobs` must be a positive value or -1.",
        ),
        (
            "/v1/chat/completions",
            {"messages": CHAT, "top_logprobs": 2},
            "when using `top_logprobs`, `logprobs` must be set to true.",
        ),
        (
            "/v1/chat/completions",
            {"messages": CHAT, "logprobs": True, "top_logprobs": -5},
            "`top_logprobs` must be a positive value or -1.",
        ),
        (
            "/v1/chat/completions",
            {"messages": CHAT, "logprobs": True, "top_logprobs": 30},
            "Requested sample logprobs of 30",
        ),
    ],
)
def test_bad_logprob_requests_are_400(
    client: httpx.Client, path: str, body: dict[str, Any], fragment: str
) -> None:
    assert fragment in error_of(client.post(path, json=body), 400)["message"]


def test_max_logprobs_is_configurable(client: httpx.Client, server: FakeServer) -> None:
    server.config.max_logprobs = 2
    response = client.post("/v1/completions", json={"prompt": "x", "logprobs": 3})
    assert "max allowed: 2" in error_of(response, 400)["message"]
    assert complete(client, logprobs=2, max_tokens=1)["choices"][0]["logprobs"]


def test_completion_logprobs_shape(client: httpx.Client) -> None:
    body = complete(client, max_tokens=5, logprobs=2, temperature=0)
    choice = body["choices"][0]
    logprobs = choice["logprobs"]
    assert set(logprobs) == {"text_offset", "token_logprobs", "tokens", "top_logprobs"}
    tokens = logprobs["tokens"]
    assert len(tokens) == body["usage"]["completion_tokens"] == 5
    assert "".join(tokens) == choice["text"]
    assert logprobs["text_offset"] == [len("".join(tokens[:i])) for i in range(len(tokens))]
    rows = zip(tokens, logprobs["token_logprobs"], logprobs["top_logprobs"], strict=True)
    for token, value, top in rows:
        assert top[token] == value
        assert len(top) <= 3  # the token and the top 2
        # Greedy decoding takes the most likely token.
        assert value == max(top.values())


def test_completion_logprobs_zero_lists_only_the_chosen_token(client: httpx.Client) -> None:
    logprobs = complete(client, max_tokens=3, logprobs=0)["choices"][0]["logprobs"]
    assert [list(top) for top in logprobs["top_logprobs"]] == [[t] for t in logprobs["tokens"]]


def test_sampled_tokens_are_not_always_the_most_likely(client: httpx.Client) -> None:
    body = complete(client, max_tokens=40, logprobs=3, temperature=1.0, seed=3)
    logprobs = body["choices"][0]["logprobs"]
    below_top = [
        token
        for token, value, top in zip(
            logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"], strict=True
        )
        if value < max(top.values())
    ]
    assert 0 < len(below_top) < len(logprobs["tokens"])


def test_streamed_completion_logprobs_match_the_whole_response(client: httpx.Client) -> None:
    fields = {"prompt": "The town", "seed": 4, "max_tokens": 6, "logprobs": 2}
    whole = complete(client, **fields)["choices"][0]["logprobs"]
    chunks = [json.loads(p) for p in stream(client, "/v1/completions", fields)[:-1]]
    streamed: dict[str, list[Any]] = {key: [] for key in whole}
    emitted = 0
    for chunk in chunks:
        [choice] = chunk["choices"]
        part = choice["logprobs"]
        assert len(part["tokens"]) == 1  # one token per chunk
        # A chunk's offsets start where the text streamed so far ends.
        assert part["text_offset"] == [emitted]
        emitted += len(choice["text"])
        for key in whole:
            streamed[key] += part[key]
    assert streamed["tokens"] == whole["tokens"]
    assert streamed["token_logprobs"] == whole["token_logprobs"]
    assert streamed["top_logprobs"] == whole["top_logprobs"]


def test_stream_sends_every_token_when_logprobs_are_asked(client: httpx.Client) -> None:
    full = complete(client, seed=5, max_tokens=30)["choices"][0]["text"]
    stop = full.split()[3]
    fields = {"prompt": "The town", "seed": 5, "max_tokens": 30, "stop": stop, "logprobs": 1}
    whole = complete(client, **fields)
    chunks = [json.loads(p) for p in stream(client, "/v1/completions", fields)[:-1]]
    # Even a token whose text the stop string cut away comes with its logprobs.
    assert len(chunks) == whole["usage"]["completion_tokens"]
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]


def test_chat_logprobs_shape_and_end_of_sequence(client: httpx.Client, server: FakeServer) -> None:
    server.config.answer_words = 3
    body = chat(client, logprobs=True, top_logprobs=2)
    [choice] = body["choices"]
    content = choice["logprobs"]["content"]
    assert len(content) == body["usage"]["completion_tokens"] == 4
    *words, eos = content
    assert "".join(entry["token"] for entry in words) == choice["message"]["content"]
    # The end-of-sequence token is scored like any other, but adds no text.
    assert eos["token"] == "<|end|>"
    for entry in content:
        assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"}
        assert bytes(entry["bytes"]).decode() == entry["token"]
        assert len(entry["top_logprobs"]) == 2
        # Like vLLM, the chosen token is listed first among the top logprobs.
        assert entry["top_logprobs"][0] == {
            "token": entry["token"],
            "logprob": entry["logprob"],
            "bytes": entry["bytes"],
        }


def test_chat_without_top_logprobs_lists_no_alternatives(client: httpx.Client) -> None:
    content = chat(client, logprobs=True, max_tokens=3)["choices"][0]["logprobs"]["content"]
    assert len(content) == 3
    assert all(entry["top_logprobs"] == [] for entry in content)


def test_streamed_chat_logprobs_match_the_whole_response(
    client: httpx.Client, server: FakeServer
) -> None:
    server.config.answer_words = 4
    fields = {"messages": CHAT, "logprobs": True, "top_logprobs": 3, "seed": 2}
    whole = chat(client, **fields)["choices"][0]["logprobs"]["content"]
    role, *chunks = [json.loads(p) for p in stream(client, "/v1/chat/completions", fields)[:-1]]
    assert role["choices"][0]["logprobs"] is None
    streamed = []
    for chunk in chunks:
        [entry] = chunk["choices"][0]["logprobs"]["content"]
        streamed.append(entry)
    assert streamed == whole
    assert chunks[-1]["choices"][0]["delta"] == {"content": ""}
    assert streamed[-1]["token"] == "<|end|>"


def test_tokens_as_token_ids(client: httpx.Client, server: FakeServer) -> None:
    server.config.answer_words = 3
    plain = chat(client, logprobs=True, top_logprobs=1, return_token_ids=True)
    coded = chat(client, logprobs=True, top_logprobs=1, return_tokens_as_token_ids=True)
    plain_content = plain["choices"][0]["logprobs"]["content"]
    coded_content = coded["choices"][0]["logprobs"]["content"]
    ids = plain["choices"][0]["token_ids"]
    assert [entry["token"] for entry in coded_content] == [f"token_id:{i}" for i in ids]
    # The chosen token's bytes still spell its text; the alternatives' spell "token_id:N".
    assert [e["bytes"] for e in coded_content] == [e["bytes"] for e in plain_content]
    assert coded_content[0]["top_logprobs"][0]["token"] == f"token_id:{ids[0]}"
    completion = complete(client, max_tokens=2, logprobs=1, return_tokens_as_token_ids=True)
    tokens = completion["choices"][0]["logprobs"]["tokens"]
    assert all(token.startswith("token_id:") for token in tokens)
    decoded = detokenize(client, [int(token.split(":")[1]) for token in tokens])
    assert decoded == completion["choices"][0]["text"]


def test_return_token_ids(client: httpx.Client, server: FakeServer) -> None:
    server.config.answer_words = 5
    prompt_ids = tokenize(client, prompt="The town")["tokens"]
    whole = complete(client, max_tokens=4, return_token_ids=True)
    [choice] = whole["choices"]
    assert choice["prompt_token_ids"] == prompt_ids
    assert len(choice["token_ids"]) == 4
    assert detokenize(client, choice["token_ids"]) == choice["text"]
    chunks = [
        json.loads(p)["choices"][0]
        for p in stream(
            client,
            "/v1/completions",
            {"prompt": "The town", "max_tokens": 4, "return_token_ids": True},
        )[:-1]
    ]
    assert chunks[0]["prompt_token_ids"] == prompt_ids
    assert all(c["prompt_token_ids"] is None for c in chunks[1:])
    assert [i for c in chunks for i in c["token_ids"]] == choice["token_ids"]
    chat_whole = chat(client, return_token_ids=True)
    role, *rest = [
        json.loads(p)
        for p in stream(
            client, "/v1/chat/completions", {"messages": CHAT, "return_token_ids": True}
        )[:-1]
    ]
    assert role["prompt_token_ids"] == chat_whole["prompt_token_ids"]
    assert chat_whole["prompt_token_ids"] == tokenize(client, messages=CHAT)["tokens"]
    assert [i for c in rest for i in c["choices"][0]["token_ids"]] == (
        chat_whole["choices"][0]["token_ids"]
    )


def test_greedy_output_ranks_first_when_scored_as_a_prompt(client: httpx.Client) -> None:
    # As with a real model: what the model itself said greedily is its own first choice.
    body = complete(client, max_tokens=8, temperature=0, return_token_ids=True)
    [choice] = body["choices"]
    prompt = choice["prompt_token_ids"] + choice["token_ids"]
    scored = complete(client, prompt=prompt, max_tokens=1, prompt_logprobs=1)
    entries = scored["choices"][0]["prompt_logprobs"][len(choice["prompt_token_ids"]) :]
    assert [
        entry[str(i)]["rank"] for i, entry in zip(choice["token_ids"], entries, strict=True)
    ] == [1] * 8


def test_reset_restores_prompt_ranks_changed_in_place(server: FakeServer) -> None:
    server.config.prompt_ranks["river"] = 9
    server.reset()
    assert "river" not in server.config.prompt_ranks

"""Bad input gets a clear 4xx (never a 500); failing model servers fail one side, not the app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.conftest import csrf_headers

JSON = dict[str, Any]
FINISHED = {"done", "error", "cancelled", "interrupted"}


@asynccontextmanager
async def app_client(settings: Settings, models: ModelsFile) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app built from these settings and models, lifespan run."""
    async with LifespanManager(create_app(settings, models)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def compare(client: httpx.AsyncClient, **body: Any) -> JSON:
    response = await client.post("/api/v1/comparisons", json=body)
    assert response.status_code == 201, response.text
    data: JSON = response.json()
    return data


async def get(client: httpx.AsyncClient, conversation_id: str) -> JSON:
    response = await client.get(f"/api/v1/comparisons/{conversation_id}")
    assert response.status_code == 200, response.text
    data: JSON = response.json()
    return data


async def wait_finished(client: httpx.AsyncClient, conversation_id: str) -> JSON:
    """Poll until both sides of the latest turn are stored as finished."""
    deadline = time.monotonic() + 10
    while True:
        data = await get(client, conversation_id)
        turn = data["turns"][-1]
        if turn["a"]["status"] in FINISHED and turn["b"]["status"] in FINISHED:
            return data
        assert time.monotonic() < deadline, "the turn did not finish"
        await asyncio.sleep(0.05)


def assert_clear_4xx(response: httpx.Response, status: int, *words: str) -> str:
    """The status, a JSON detail message, and the words that make it clear."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for word in words:
        assert word in detail, (word, detail)
    return detail


@pytest.fixture
def quick(base_server: FakeServer, chat_server: FakeServer) -> tuple[FakeServer, FakeServer]:
    """Both fakes answering with a few words."""
    for server in (base_server, chat_server):
        server.config.answer_words = 6
    return base_server, chat_server


# ---------------------------------------------------------------- bad input


INVALID_COMPARISONS: list[tuple[JSON, list[str]]] = [
    ({"prompt": ""}, ["prompt"]),
    ({"prompt": "   \n\t "}, ["prompt", "empty"]),
    ({}, ["prompt", "required"]),
    ({"prompt": 5}, ["prompt"]),
    ({"prompt": "hi", "models": ["base", "gpt-9"]}, ["gpt-9", "unknown model"]),
    ({"prompt": "hi", "models": ["base"]}, ["models"]),
    ({"prompt": "hi", "models": ["base", "chat", "down", "base", "chat"]}, ["models"]),
    ({"prompt": "hi", "models": ["base", "chat"], "blind": "maybe"}, ["blind"]),
    ({"prompt": "hi", "base_format": "markdown"}, ["base_format"]),
    ({"prompt": "hi", "params": {"temperature": 5}}, ["params.temperature"]),
    ({"prompt": "hi", "params": {"top_p": 0}}, ["params.top_p"]),
    ({"prompt": "hi", "params": {"max_tokens": 0}}, ["params.max_tokens"]),
    ({"prompt": "hi", "params": {"max_tokens": 100_000}}, ["params.max_tokens"]),
    ({"prompt": "hi", "params": {"seed": -1}}, ["params.seed"]),
    ({"prompt": "hi", "params": {"top_k": -2}}, ["params.top_k"]),
    ({"prompt": "hi", "params": {"repetition_penalty": 0}}, ["params.repetition_penalty"]),
    ({"prompt": "hi", "params": {"stop": ["a", "b", "c", "d", "e"]}}, ["params.stop"]),
    ({"prompt": "hi", "params": {"stop": [""]}}, ["params.stop", "empty"]),
    ({"prompt": "hi", "params": {"temprature": 0.5}}, ["params.temprature"]),
    ({"prompt": "hi", "colour": "blue"}, ["colour"]),
]


async def test_invalid_comparison_input_is_a_clear_422_and_nothing_is_sent(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    # One app for every case: each must fail on its own, before any model is called.
    for body, words in INVALID_COMPARISONS:
        response = await client.post("/api/v1/comparisons", json=body)
        assert response.status_code == 422, (body, response.text)
        assert_clear_4xx(response, 422, *words)
    assert base_server.requests == [] and chat_server.requests == []


async def test_over_long_prompt_is_422_naming_the_limit(
    client: httpx.AsyncClient, settings: Settings, base_server: FakeServer
) -> None:
    limit = settings.max_prompt_chars
    response = await client.post("/api/v1/comparisons", json={"prompt": "x" * (limit + 1)})
    assert_clear_4xx(response, 422, "too long", str(limit))
    assert base_server.requests == []
    at_limit = "word " * (limit // 5)
    assert len(at_limit) <= limit
    base_server.config.max_model_len = 100_000
    response = await client.post(
        "/api/v1/comparisons", json={"prompt": at_limit, "models": ["base", "base"]}
    )
    assert response.status_code == 201, response.text


async def test_over_long_system_prompt_is_422(
    client: httpx.AsyncClient, settings: Settings, base_server: FakeServer
) -> None:
    system = "s" * (settings.max_system_chars + 1)
    response = await client.post("/api/v1/comparisons", json={"prompt": "hi", "system": system})
    assert_clear_4xx(response, 422, "system", str(settings.max_system_chars))
    assert base_server.requests == []


async def test_max_tokens_over_the_configured_limit_is_422(
    settings: Settings, models: ModelsFile, base_server: FakeServer
) -> None:
    tight = settings.model_copy(update={"max_tokens_limit": 50})
    async with app_client(tight, models) as client:
        response = await client.post(
            "/api/v1/comparisons", json={"prompt": "hi", "params": {"max_tokens": 51}}
        )
    assert_clear_4xx(response, 422, "max_tokens", "50")
    assert base_server.requests == []


async def test_malformed_json_body_is_422_saying_so(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/comparisons",
        content=b'{"prompt": "hi",',
        headers={"content-type": "application/json"},
    )
    assert_clear_4xx(response, 422, "not valid JSON")


async def test_non_json_content_type_is_415(
    client: httpx.AsyncClient, base_server: FakeServer
) -> None:
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        response = await client.post(
            "/api/v1/comparisons",
            content=b'{"prompt": "hi"}',
            headers={"content-type": content_type},
        )
        assert_clear_4xx(response, 415, "application/json")
    assert base_server.requests == []


async def test_json_endpoints_without_content_type_are_415(client: httpx.AsyncClient) -> None:
    for path in (
        "/api/v1/comparisons",
        "/api/v1/comparisons/x/turns",
        "/api/v1/comparisons/x/votes",
    ):
        response = await client.post(path, content=b'{"prompt": "hi"}')
        assert_clear_4xx(response, 415, "application/json")


async def test_body_over_the_size_limit_is_413(
    client: httpx.AsyncClient, settings: Settings, base_server: FakeServer
) -> None:
    prompt = "x" * (settings.max_body_bytes + 10)
    response = await client.post("/api/v1/comparisons", json={"prompt": prompt})
    assert_clear_4xx(response, 413, str(settings.max_body_bytes))
    assert base_server.requests == []


async def test_streamed_body_over_the_size_limit_is_413(
    settings: Settings, models: ModelsFile, base_server: FakeServer
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2_000})

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    async with app_client(small, models) as client:
        response = await client.post(
            "/api/v1/comparisons", content=chunks(), headers={"content-type": "application/json"}
        )
    assert "content-length" not in response.request.headers
    assert_clear_4xx(response, 413, "2000")
    assert base_server.requests == []


async def test_body_just_under_a_small_limit_is_accepted(
    settings: Settings, models: ModelsFile, quick: tuple[FakeServer, FakeServer]
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2_000})
    async with app_client(small, models) as client:
        ok = await client.post("/api/v1/comparisons", json={"prompt": "y" * 1_900})
        too_big = await client.post("/api/v1/comparisons", json={"prompt": "y" * 2_100})
    assert ok.status_code == 201, ok.text
    assert_clear_4xx(too_big, 413)


# ---------------------------------------------------------------- failing model servers


async def test_one_server_down_fails_only_its_side(
    client: httpx.AsyncClient, quick: tuple[FakeServer, FakeServer], models: ModelsFile
) -> None:
    data = await compare(client, prompt="Hello", models=["base", "down"])
    a, b = data["turns"][0]["a"], data["turns"][0]["b"]
    assert a["status"] == "done" and a["text"] and a["error"] is None
    assert b["status"] == "error" and b["finish_reason"] == "error"
    assert "down" in b["error"] and "connect" in b["error"]
    down = models.get("down")
    assert down is not None and down.url in b["error"]
    assert b["text"] == "" and b["completion_tokens"] is None
    assert b["finished_at"] is not None


async def test_follow_up_after_a_failed_side_still_works(
    client: httpx.AsyncClient, quick: tuple[FakeServer, FakeServer]
) -> None:
    base_server, _ = quick
    first = await compare(client, prompt="Hello", models=["base", "down"])
    response = await client.post(
        f"/api/v1/comparisons/{first['id']}/turns", json={"prompt": "Again"}
    )
    assert response.status_code == 201, response.text
    data = response.json()
    assert len(data["turns"]) == 2
    assert data["turns"][1]["a"]["status"] == "done"
    assert data["turns"][1]["b"]["status"] == "error"
    assert base_server.requests[-1]["body"]["prompt"].endswith("Again")


async def test_server_answering_http_500_fails_that_side_with_its_message(
    client: httpx.AsyncClient, quick: tuple[FakeServer, FakeServer]
) -> None:
    _, chat_server = quick
    chat_server.config.fail_status = 500
    data = await compare(client, prompt="Hello")
    a, b = data["turns"][0]["a"], data["turns"][0]["b"]
    assert a["status"] == "done" and a["text"]
    assert b["status"] == "error" and b["finish_reason"] == "error"
    direct = httpx.post(chat_server.base_url + "/chat/completions", json={}, timeout=5)
    assert direct.status_code == 500
    assert direct.json()["message"] in b["error"]
    assert "500" in b["error"] and "chat" in b["error"]


async def test_server_rejecting_the_request_fails_that_side_with_its_message(
    client: httpx.AsyncClient, quick: tuple[FakeServer, FakeServer]
) -> None:
    base_server, _ = quick
    base_server.config.max_model_len = 8
    data = await compare(client, prompt="one two three four five", params={"max_tokens": 16})
    a, b = data["turns"][0]["a"], data["turns"][0]["b"]
    assert b["status"] == "done"
    assert a["status"] == "error" and "400" in a["error"]
    assert "maximum context length is 8 tokens" in a["error"]


async def test_failure_mid_stream_keeps_the_partial_text(
    client: httpx.AsyncClient, quick: tuple[FakeServer, FakeServer]
) -> None:
    _, chat_server = quick
    chat_server.config.answer_words = 12
    chat_server.config.fail_after_tokens = 3
    data = await compare(client, prompt="Tell me about rivers", params={"seed": 11})
    a, b = data["turns"][0]["a"], data["turns"][0]["b"]
    assert a["status"] == "done" and a["text"]
    assert b["status"] == "error" and b["finish_reason"] == "error" and b["error"]
    assert "chat" in b["error"]
    # The fake's own first three tokens for the same request, asked for in one piece.
    sent = {k: v for k, v in chat_server.requests[-1]["body"].items() if k != "stream_options"}
    three = httpx.post(
        chat_server.base_url + "/chat/completions",
        json={**sent, "stream": False, "max_tokens": 3},
        timeout=5,
    ).json()
    assert three["usage"]["completion_tokens"] == 3
    expected = three["choices"][0]["message"]["content"]
    assert expected
    assert b["text"] == expected


async def test_failure_mid_stream_text_is_a_prefix_of_the_successful_answer(
    client: httpx.AsyncClient, quick: tuple[FakeServer, FakeServer]
) -> None:
    base_server, _ = quick
    base_server.config.answer_words = 12
    body = {"prompt": "The old bridge", "params": {"seed": 99}}
    complete = (await compare(client, **body))["turns"][0]["a"]
    base_server.config.fail_after_tokens = 3
    partial = (await compare(client, **body))["turns"][0]
    assert partial["a"]["status"] == "error"
    assert partial["a"]["text"] and complete["text"].startswith(partial["a"]["text"])
    assert len(partial["a"]["text"]) < len(complete["text"])
    assert partial["b"]["status"] == "done"


async def test_slow_server_times_out_on_its_side_only(
    settings: Settings, models: ModelsFile, quick: tuple[FakeServer, FakeServer]
) -> None:
    _, chat_server = quick
    impatient = settings.model_copy(update={"read_timeout_seconds": 0.5})
    chat_server.config.first_token_delay = 3.0
    async with app_client(impatient, models) as client:
        started = time.monotonic()
        data = await compare(client, prompt="Hello")
        elapsed = time.monotonic() - started
    a, b = data["turns"][0]["a"], data["turns"][0]["b"]
    assert a["status"] == "done" and a["text"]
    assert b["status"] == "error" and b["finish_reason"] == "error"
    assert "timed out" in b["error"] and "chat" in b["error"]
    assert elapsed < 3.0


async def test_html_in_model_output_is_returned_verbatim_in_json(
    client: httpx.AsyncClient, quick: tuple[FakeServer, FakeServer]
) -> None:
    base_server, _ = quick
    payload = "<script>alert(1)</script>"
    base_server.config.inject_text = payload
    response = await client.post("/api/v1/comparisons", json={"prompt": "Hi"})
    assert response.status_code == 201
    assert response.json()["turns"][0]["a"]["text"].startswith(payload)
    assert payload in response.text
    stored = await get(client, response.json()["id"])
    assert stored["turns"][0]["a"]["text"].startswith(payload)


# ---------------------------------------------------------------- too early


async def start_slow_in_browser(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> str:
    """Start a comparison through the page form, which returns before the answers are done."""
    for server in (base_server, chat_server):
        server.config.answer_words = 8
        server.config.token_delay = 0.05
    response = await client.post(
        "/c",
        data={"prompt": "Slowly now", "model_a": "base", "model_b": "chat"},
        headers=await csrf_headers(client),
    )
    assert response.status_code == 204, response.text
    return str(response.headers["HX-Location"]).rsplit("/", 1)[-1]


async def test_voting_before_both_answers_are_complete_is_409(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    conversation_id = await start_slow_in_browser(client, base_server, chat_server)
    early = await client.post(
        f"/api/v1/comparisons/{conversation_id}/votes", json={"winner": "a", "rater": "alice"}
    )
    assert_clear_4xx(early, 409, "complete")
    data = await wait_finished(client, conversation_id)
    assert data["turns"][0]["votes"] == []
    assert data["turns"][0]["a"]["status"] == data["turns"][0]["b"]["status"] == "done"
    late = await client.post(
        f"/api/v1/comparisons/{conversation_id}/votes", json={"winner": "a", "rater": "alice"}
    )
    assert late.status_code == 201, late.text


async def test_following_up_while_the_previous_turn_runs_is_409(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    conversation_id = await start_slow_in_browser(client, base_server, chat_server)
    early = await client.post(
        f"/api/v1/comparisons/{conversation_id}/turns", json={"prompt": "Next"}
    )
    assert_clear_4xx(early, 409, "complete")
    data = await wait_finished(client, conversation_id)
    assert len(data["turns"]) == 1
    assert len(base_server.requests) == 1 and len(chat_server.requests) == 1


# ---------------------------------------------------------------- consistency


async def test_rejected_follow_ups_leave_the_conversation_unchanged(
    settings: Settings, models: ModelsFile, quick: tuple[FakeServer, FakeServer]
) -> None:
    base_server, chat_server = quick
    tight = settings.model_copy(update={"max_tokens_limit": 50})
    async with app_client(tight, models) as client:
        first = await compare(client, prompt="One", params={"max_tokens": 20})
        path = f"/api/v1/comparisons/{first['id']}/turns"
        rejected = [
            ({"prompt": "  "}, 422),
            ({"prompt": "x" * (settings.max_prompt_chars + 1)}, 422),
            ({"prompt": "Two", "params": {"temperature": 9}}, 422),
            ({"prompt": "Two", "params": {"max_tokens": 51}}, 422),
            ({"prompt": "Two", "system": "not allowed on a follow-up"}, 422),
        ]
        for body, status in rejected:
            response = await client.post(path, json=body)
            assert_clear_4xx(response, status)
        stored = await get(client, first["id"])
        assert stored == first
        assert len(base_server.requests) == len(chat_server.requests) == 1
        ok = await client.post(path, json={"prompt": "Two", "params": {"max_tokens": 50}})
        assert ok.status_code == 201, ok.text
        assert [t["number"] for t in ok.json()["turns"]] == [1, 2]


async def test_rejected_votes_store_nothing(
    client: httpx.AsyncClient, quick: tuple[FakeServer, FakeServer], settings: Settings
) -> None:
    first = await compare(client, prompt="One")
    path = f"/api/v1/comparisons/{first['id']}/votes"
    for body in (
        {"winner": "x", "rater": "r"},
        {"winner": "a"},
        {"winner": "a", "rater": "r", "score_a": 9},
        {"winner": "a", "rater": "r", "comment": "c" * (settings.max_comment_chars + 1)},
        {"winner": "a", "rater": "r", "turn": 0},
    ):
        response = await client.post(path, json=body)
        assert_clear_4xx(response, 422)
    assert (await get(client, first["id"]))["turns"][0]["votes"] == []


async def test_a_vote_whose_commit_fails_is_not_acknowledged(
    app: FastAPI,
    client: httpx.AsyncClient,
    quick: tuple[FakeServer, FakeServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 2xx means committed: the request's commit runs before the response is sent."""
    first = await compare(client, prompt="One")
    real_commit = AsyncSession.commit

    async def failing_commit(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    # As a browser sees it: the status that was sent, not an exception raised in-process.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        monkeypatch.setattr(AsyncSession, "commit", failing_commit)
        # SQLite writes queued votes on a connection of their own (comparisons/vote_batches.py).
        real_connection_commit = AsyncConnection.commit
        monkeypatch.setattr(AsyncConnection, "commit", failing_commit)
        response = await browser.post(
            f"/api/v1/comparisons/{first['id']}/votes", json={"winner": "a", "rater": "r"}
        )
        monkeypatch.setattr(AsyncSession, "commit", real_commit)
        monkeypatch.setattr(AsyncConnection, "commit", real_connection_commit)
    assert response.status_code == 500
    assert (await get(client, first["id"]))["turns"][0]["votes"] == []

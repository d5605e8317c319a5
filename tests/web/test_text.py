"""Text that is not valid Unicode (a lone surrogate) or holds NUL is refused at the door with a
422 naming the field; a row that holds such text already still shows (never a 500)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from playground_tools.fake_vllm import FakeServer
from tests.conftest import csrf_headers

JSON = dict[str, Any]
LONE = "\\ud800"  # as JSON writes it; json.loads makes it a lone surrogate


async def post_raw(client: httpx.AsyncClient, url: str, body: str) -> httpx.Response:
    """POST a JSON body as written (httpx could not encode a lone surrogate itself)."""
    return await client.post(
        url, content=body.encode("ascii"), headers={"content-type": "application/json"}
    )


async def compare(client: httpx.AsyncClient) -> JSON:
    response = await client.post(
        "/api/v1/comparisons", json={"prompt": "hi", "params": {"max_tokens": 3}}
    )
    assert response.status_code == 201, response.text
    data: JSON = response.json()
    return data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f'{{"prompt": "a{LONE}b"}}', "prompt"),
        (f'{{"prompt": "hi", "system": "{LONE}"}}', "system"),
        (f'{{"prompt": "hi", "params": {{"stop": ["x", "{LONE}"]}}}}', "stop"),
        (f'{{"prompt": "hi", "models": ["base", "{LONE}"]}}', "models"),
        ('{"prompt": "hi", "params": {"stop": ["a\\u0000"]}}', "stop"),
    ],
)
async def test_a_comparison_with_invalid_text_is_a_422_naming_the_field(
    client: httpx.AsyncClient, base_server: FakeServer, body: str, field: str
) -> None:
    response = await post_raw(client, "/api/v1/comparisons", body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert base_server.requests == []


@pytest.mark.parametrize(
    ("suffix", "body", "field"),
    [
        ("turns", f'{{"prompt": "{LONE}"}}', "prompt"),
        ("turns", f'{{"prompt": "hi", "params": {{"stop": ["{LONE}"]}}}}', "stop"),
        ("votes", f'{{"winner": "a", "rater": "{LONE}"}}', "rater"),
        ("votes", f'{{"winner": "a", "rater": "ana", "comment": "ok {LONE}"}}', "comment"),
    ],
)
async def test_turns_and_votes_with_invalid_text_are_a_422_naming_the_field(
    client: httpx.AsyncClient, suffix: str, body: str, field: str
) -> None:
    created = await compare(client)
    response = await post_raw(client, f"/api/v1/comparisons/{created['id']}/{suffix}", body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


@pytest.mark.parametrize("action", ["token-shift", "prefix-continuations"])
async def test_lens_actions_with_an_invalid_model_name_are_a_422(
    client: httpx.AsyncClient, action: str
) -> None:
    created = await compare(client)
    generation_id = created["turns"][0]["b"]["id"]
    body = f'{{"base_model": "{LONE}"}}'
    response = await post_raw(client, f"/api/v1/generations/{generation_id}/{action}", body)
    assert response.status_code == 422, response.text
    assert "base_model" in response.json()["detail"]


async def test_the_forms_refuse_nul_and_name_the_field(client: httpx.AsyncClient) -> None:
    """Browsers cannot send a lone surrogate in a form (it arrives as U+FFFD); NUL they can."""
    headers = await csrf_headers(client)
    response = await client.post("/c", data={"prompt": "hi", "stop": "a\x00"}, headers=headers)
    assert response.status_code == 422, response.text
    assert "stop" in response.text


def _poison(value: Any) -> Any:
    """The same JSON with a lone surrogate appended to every string in it."""
    if isinstance(value, str):
        return value + "\ud800"
    if isinstance(value, list):
        return [_poison(v) for v in value]
    if isinstance(value, dict):
        return {k: _poison(v) for k, v in value.items()}
    return value


async def test_rows_already_holding_a_lone_surrogate_still_show(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Stored before the door was shut: JSON columns keep one as an ASCII escape (\\ud800)."""
    created = await compare(client)
    turn = created["turns"][0]
    vote = await client.post(
        f"/api/v1/comparisons/{created['id']}/votes",
        json={"winner": "a", "rater": "ana", "comment": "fine"},
    )
    assert vote.status_code == 201, vote.text
    params = {**turn["params"], "stop": ["\ud800", "ok"]}
    generation = turn["b"]
    messages = _poison(generation["messages"])
    sessions = app.state.playground.sessions
    async with sessions() as session:
        await session.execute(
            text("UPDATE turns SET params = :params WHERE id = :id"),
            {"params": json.dumps(params), "id": turn["id"]},
        )
        await session.execute(
            text("UPDATE generations SET params = :params, messages = :messages"),
            {"params": json.dumps(params), "messages": json.dumps(messages)},
        )
        await session.execute(
            text("UPDATE generations SET tokens = :tokens WHERE id = :id"),
            {
                "tokens": json.dumps(
                    [{"token": "\ud800", "logprob": -0.5, "top": [["\ud800", -0.5]]}]
                ),
                "id": generation["id"],
            },
        )
        await session.commit()
    for url in [
        f"/c/{created['id']}",
        f"/api/v1/comparisons/{created['id']}",
        f"/api/v1/generations/{generation['id']}",
        f"/api/v1/generations/{generation['id']}/tokens",
        f"/generations/{generation['id']}/tokens",
        "/api/v1/exports/ratings.csv",
        "/",
        "/history",
    ]:
        response = await client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
        response.content.decode("utf-8")  # valid UTF-8 throughout

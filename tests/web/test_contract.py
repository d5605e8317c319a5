"""The JSON API does what its OpenAPI document says: types, and the shape of error answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import csrf_headers


async def compare(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/comparisons", json={"prompt": "hi", "params": {"max_tokens": 3}}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


@pytest.mark.parametrize("score", [True, False, "4", 4.0, 4.5])
async def test_a_score_must_be_a_json_integer(client: httpx.AsyncClient, score: Any) -> None:
    created = await compare(client)
    response = await client.post(
        f"/api/v1/comparisons/{created['id']}/votes",
        json={"winner": "a", "rater": "ana", "score_a": score},
    )
    assert response.status_code == 422, response.text
    assert "score_a" in response.json()["detail"]


async def test_the_vote_form_still_takes_scores_typed_as_text(client: httpx.AsyncClient) -> None:
    created = await compare(client)
    turn_id = created["turns"][0]["id"]
    headers = await csrf_headers(client)
    response = await client.post(
        f"/turns/{turn_id}/vote",
        data={"winner": "b", "rater": "ana", "score_a": "2", "score_b": " 5 "},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    stored = (await client.get(f"/api/v1/comparisons/{created['id']}")).json()
    vote = stored["turns"][0]["votes"][0]
    assert (vote["score_a"], vote["score_b"]) == (2, 5)
    refused = await client.post(
        f"/turns/{turn_id}/vote",
        data={"winner": "b", "rater": "ana", "score_a": "two"},
        headers=headers,
    )
    assert refused.status_code == 422
    assert "score_a" in refused.text

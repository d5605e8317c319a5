"""The JSON API does what its OpenAPI document says: types, and the shape of error answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

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


async def test_an_unexpected_error_is_a_500_in_the_documented_shape(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/api/v1/boom", boom)
    app.add_api_route("/boom", boom)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            api = await client.get("/api/v1/boom")
            page = await client.get("/boom")
    assert api.status_code == 500
    assert api.json() == {"detail": "internal server error"}
    assert page.status_code == 500 and "internal server error" in page.text


async def test_the_document_describes_ids_and_errors_as_they_are(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"4XX", "5XX"} <= set(responses), (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                ref = responses["422"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ValidationErrorOut"), (method, path)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] != "conversation_id":
                    assert parameter["schema"]["maximum"] == 2**31 - 1, (method, path)
                if parameter["name"] == "conversation_id":
                    assert parameter["schema"]["pattern"], (method, path)
    response = await client.post("/api/v1/comparisons", json={"prompt": ""})
    assert response.status_code == 422
    body = response.json()
    assert isinstance(body["detail"], str) and body["errors"][0]["loc"] == ["body", "prompt"]

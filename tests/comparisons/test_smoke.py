"""A first end-to-end check of the JSON API on the fake servers."""

import httpx


async def test_comparison_runs_both_models(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/comparisons", json={"prompt": "Once upon a time"})
    assert response.status_code == 201, response.text
    turn = response.json()["turns"][0]
    assert turn["a"]["status"] == "done" and turn["a"]["text"]
    assert turn["b"]["status"] == "done" and turn["b"]["text"]

"""A reference regex nested too deeply for the parser: a clear 422, never a 500."""

from __future__ import annotations

import httpx

from app.forgetting.scorers import score

DEEP = "(" * 600 + "a" + ")" * 600


def test_a_too_deeply_nested_pattern_is_wrong_not_an_error() -> None:
    result = score({"type": "regex", "value": DEEP}, "a")
    assert result.correct is False and "deep" in result.detail


async def test_importing_a_too_deeply_nested_reference_is_a_422(client: httpx.AsyncClient) -> None:
    item = {"id": "q", "prompt": "Say a", "reference": {"type": "regex", "value": DEEP}}
    response = await client.post("/api/v1/prompt-sets", json={"name": "deep", "items": [item]})
    assert response.status_code == 422, response.text
    assert "deep" in response.text

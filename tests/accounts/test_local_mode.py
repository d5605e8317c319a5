"""Local mode (the default on this machine) works as before accounts: no sign-in, typed names."""

from __future__ import annotations

import httpx

from app.config import ModelsFile
from tests.accounts.conftest import compare


async def test_local_mode_needs_no_sign_in_and_takes_the_typed_rater(
    client: httpx.AsyncClient, models: ModelsFile
) -> None:
    assert (await client.get("/")).status_code == 200
    assert (await client.get("/login")).status_code == 404  # no accounts here
    assert (await client.get("/api/v1/me")).status_code == 401
    conversation = await compare(client, models)
    cid = conversation["id"]
    missing = await client.post(f"/api/v1/comparisons/{cid}/votes", json={"winner": "a"})
    assert missing.status_code == 422 and "rater" in missing.json()["detail"]
    vote = await client.post(
        f"/api/v1/comparisons/{cid}/votes", json={"winner": "a", "rater": "Someone"}
    )
    assert vote.status_code == 201 and vote.json()["rater"] == "Someone"
    page = (await client.get(f"/c/{cid}")).text
    assert 'name="rater"' in page and 'href="/admin/accounts"' not in page
    assert (await client.get("/api/v1/exports/dpo.jsonl")).status_code == 200

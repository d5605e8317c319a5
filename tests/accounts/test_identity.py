"""Owners, the rater on a judgement, whose judgements a rater sees, API tokens, limits."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.comparisons.models import Conversation, Judgement
from app.config import ModelsFile
from app.identity.models import ApiToken, Role
from tests.accounts.conftest import Maker, compare, csrf_token, state_of
from tests.annotation.helpers import judge, next_item, rated_run


async def new_api_token(client: httpx.AsyncClient) -> str:
    token = await csrf_token(client, "/account")
    page = await client.post("/account/tokens", data={"name": "script", "csrf_token": token})
    match = re.search(r'class="new-token">([A-Za-z0-9_-]+)<', page.text)
    assert match, page.text
    return match.group(1)


async def test_only_the_owner_or_an_admin_may_change_a_conversation(
    make_client: Maker, models: ModelsFile, team_app: FastAPI
) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    admin = await make_client("ada", Role.ADMIN)
    conversation = await compare(alice, models)
    cid = conversation["id"]
    turn_id = conversation["turns"][0]["id"]
    async with state_of(team_app).sessions() as session:
        owner = await session.scalar(select(Conversation.owner_id).where(Conversation.id == cid))
    me = (await alice.get("/api/v1/me")).json()
    assert owner == me["id"]
    follow_up = {"prompt": "And then?", "params": {"max_tokens": 4}}
    for response in (
        await bob.post(f"/api/v1/comparisons/{cid}/turns", json=follow_up),
        await bob.post(f"/c/{cid}/turns", data={"prompt": "and?"}),
        await bob.post(f"/turns/{turn_id}/stop"),
        await bob.post(f"/turns/{turn_id}/regenerate", data={"slot": "a"}),
    ):
        assert response.status_code == 403, response.text
        assert "not yours" in response.text
    # Bob may still read and judge it, as himself.
    assert (await bob.get(f"/c/{cid}")).status_code == 200
    assert (await admin.post(f"/api/v1/comparisons/{cid}/turns", json=follow_up)).status_code == 201
    assert (await alice.post(f"/api/v1/comparisons/{cid}/turns", json=follow_up)).status_code == 201


async def test_the_rater_on_a_judgement_is_the_account_and_raters_see_only_their_own(
    make_client: Maker, models: ModelsFile, team_app: FastAPI
) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    admin = await make_client("ada", Role.ADMIN)
    conversation = await compare(alice, models)
    cid, turn = conversation["id"], conversation["turns"][0]
    # A rater name in the request is ignored: the vote is Bob's.
    vote = await bob.post(
        f"/api/v1/comparisons/{cid}/votes", json={"winner": "a", "rater": "alice"}
    )
    assert vote.status_code == 201, vote.text
    assert vote.json()["rater"] == "bob"
    page_vote = await alice.post(f"/turns/{turn['id']}/vote", data={"winner": "b", "rater": "bob"})
    assert page_vote.status_code == 200, page_vote.text
    async with state_of(team_app).sessions() as session:
        raters = sorted(await session.scalars(select(Judgement.rater)))
    assert raters == ["alice", "bob"]
    # Alice has not changed Bob's judgement; each sees only their own, the admin both.
    seen = {}
    for name, client in (("alice", alice), ("bob", bob), ("ada", admin)):
        data = (await client.get(f"/api/v1/comparisons/{cid}")).json()
        seen[name] = sorted(v["rater"] for v in data["turns"][0]["votes"])
    assert seen == {"alice": ["alice"], "bob": ["bob"], "ada": ["alice", "bob"]}
    page = (await alice.get(f"/c/{cid}")).text
    assert 'data-rater="alice"' in page and 'data-rater="bob"' not in page
    assert 'name="rater"' not in page  # team mode asks no name


async def test_bearer_tokens_work_on_the_api_without_csrf_and_stop_when_revoked(
    make_client: Maker, models: ModelsFile, team_app: FastAPI
) -> None:
    rater = await make_client("rita")
    token = await new_api_token(rater)
    async with state_of(team_app).sessions() as session:
        stored = (await session.scalars(select(ApiToken))).one()
    assert token not in stored.token_hash and len(stored.token_hash) == 64
    script = await make_client()  # no cookies at all
    auth = {"Authorization": f"Bearer {token}"}
    me = await script.get("/api/v1/me", headers=auth)
    assert me.status_code == 200 and me.json()["username"] == "rita"
    body = {"prompt": "hi", "models": [m.name for m in models.models][:2],
            "params": {"max_tokens": 4}}  # fmt: skip
    created = await script.post("/api/v1/comparisons", json=body, headers=auth)
    assert created.status_code == 201, created.text
    # The role holds: a rater's token opens no export.
    assert (await script.get("/api/v1/exports/dpo.jsonl", headers=auth)).status_code == 403
    # Still JSON only, token or not.
    assert (await script.post("/api/v1/comparisons", content="x", headers=auth)).status_code == 415
    # A token is no key to the pages (they are cookie-only, CSRF-checked).
    assert (await script.get("/", headers=auth)).status_code == 303
    for bad in ("Bearer wrong", "Bearer ", "Basic abc", "Bearer " + "x" * 300):
        response = await script.get("/api/v1/me", headers={"Authorization": bad})
        assert response.status_code == 401, bad
    csrf = await csrf_token(rater, "/account")
    revoke = await rater.post(f"/account/tokens/{stored.id}/revoke", data={"csrf_token": csrf})
    assert revoke.status_code == 303
    assert (await script.get("/api/v1/me", headers=auth)).status_code == 401


async def test_limits_answer_429_with_retry_after(
    make_client: Maker, models: ModelsFile, team_app: FastAPI
) -> None:
    state = state_of(team_app)
    state.settings = state.settings.model_copy(update={"comparisons_per_minute": 2})
    rater = await make_client("rita")
    await compare(rater, models)
    await compare(rater, models)
    body = {"prompt": "hi", "params": {"max_tokens": 4}}
    response = await rater.post("/api/v1/comparisons", json=body)
    assert response.status_code == 429
    assert "at most 2 a minute" in response.json()["detail"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    page = await rater.post("/c", data={"prompt": "hi"})
    assert page.status_code == 429 and "Too many requests" in page.text
    assert "Retry-After" in page.headers
    # Another account has its own budget.
    other = await make_client("bob")
    await compare(other, models)


async def test_tokens_per_day_count_the_stored_generations(
    make_client: Maker, models: ModelsFile, team_app: FastAPI
) -> None:
    state = state_of(team_app)
    rater = await make_client("rita")
    conversation = await compare(rater, models)
    used = sum(g["completion_tokens"] or 0 for g in conversation["turns"][0]["generations"])
    assert used > 0
    state.settings = state.settings.model_copy(update={"tokens_per_day": used})
    response = await rater.post(
        f"/api/v1/comparisons/{conversation['id']}/turns", json={"prompt": "more"}
    )
    assert response.status_code == 429
    assert "00:00 UTC" in response.json()["detail"]
    assert int(response.headers["Retry-After"]) <= 24 * 3600


async def test_a_rater_s_history_lists_their_own_conversations_only(
    make_client: Maker, models: ModelsFile
) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    admin = await make_client("ada", Role.ADMIN)
    mine = await compare(alice, models, prompt="Alice's private prompt")
    await compare(bob, models, prompt="Bob's private prompt")
    page = (await alice.get("/history")).text
    assert "Alice&#39;s private prompt" in page and "Bob&#39;s" not in page
    assert f"/c/{mine['id']}" in (await admin.get("/history")).text
    assert "Bob&#39;s private prompt" in (await admin.get("/history")).text


async def test_a_cookie_signed_in_api_write_must_be_json(make_client: Maker) -> None:
    rater = await make_client("rita")
    # What a cross-site form could send with the user's cookie.
    response = await rater.post("/api/v1/comparisons", data={"prompt": "hi"})
    assert response.status_code == 415


async def test_another_rater_s_name_never_unblinds_a_comparison(
    make_client: Maker, models: ModelsFile
) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    conversation = await compare(alice, models, blind=True)
    cid = conversation["id"]
    generation_id = conversation["turns"][0]["generations"][0]["id"]
    vote = await bob.post(f"/api/v1/comparisons/{cid}/votes", json={"winner": "a"})
    assert vote.status_code == 201
    assert (await bob.get(f"/api/v1/comparisons/{cid}")).json()["revealed"] is True
    # Alice has not judged: Bob's name, in the query or in the local-mode cookie, opens nothing.
    assert (await alice.get(f"/api/v1/comparisons/{cid}?rater=bob")).json()["revealed"] is False
    lens = await alice.get(f"/api/v1/generations/{generation_id}?rater=bob")
    assert lens.status_code == 409
    alice.cookies.set("playground_rater", "bob")
    assert "Model 1" in (await alice.get(f"/c/{cid}")).text
    assert "Model 1" not in (await bob.get(f"/c/{cid}")).text
    assert (await alice.get(f"/generations/{generation_id}/tokens")).status_code == 409


async def test_nobody_revokes_another_account_s_token_from_their_account_page(
    make_client: Maker, team_app: FastAPI
) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    token = await new_api_token(alice)
    async with state_of(team_app).sessions() as session:
        stored = (await session.scalars(select(ApiToken))).one()
    assert (await bob.post(f"/account/tokens/{stored.id}/revoke")).status_code == 404
    me = await bob.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "alice"


async def test_the_queue_rates_as_the_account_whatever_name_is_claimed(
    make_client: Maker, team_app: FastAPI
) -> None:
    admin = await make_client("ada", Role.ADMIN)
    bob = await make_client("bob")
    run_id = await rated_run(admin, 1)
    # Bob asks for an item in Alice's name, and judges it in Alice's name: both are his.
    item = await next_item(bob, run_id, "alice")
    assert item
    judged = await judge(bob, run_id, item, "alice", winner="a")
    assert judged["item_complete"] is True
    async with state_of(team_app).sessions() as session:
        assert list(await session.scalars(select(Judgement.rater))) == ["bob"]
    # Opening a run for rating is an admin's.
    assert (await bob.post(f"/api/v1/runs/{run_id}/task", json={})).status_code == 403

"""A rater's recap names only this run's items; a task's blind setting is what judgements say."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.comparisons.models import Judgement
from app.web.state import AppState
from tests.annotation.helpers import judge, next_item, rated_run
from tests.runs.helpers import start_run, wait_run


async def test_the_recap_of_another_run_s_item_shows_nothing(client: httpx.AsyncClient) -> None:
    hidden = await rated_run(client, 1, blind=True, reveal_names_after_judging=False)
    item = await next_item(client, hidden, "alice")
    assert item
    await judge(client, hidden, item, "alice")
    # A second run of the same models whose task shows names after judging.
    run = await start_run(client, "rate-me")
    await wait_run(client, run["id"])
    opened = await client.post(
        f"/api/v1/runs/{run['id']}/task", json={"reveal_names_after_judging": True}
    )
    assert opened.status_code == 200
    client.cookies.set("playground_rater", "alice")
    page = await client.get(f"/runs/{run['id']}/queue?after={item['run_item_id']}")
    assert page.status_code == 200
    assert "Previous item" not in page.text


async def test_judgements_are_marked_blind_as_the_task_is_now(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    run_id = await rated_run(client, 2, blind=False)
    shown = await next_item(client, run_id, "alice")
    assert shown and shown["answers"][0]["model"] is not None
    # Made blind while alice holds an item: she is shown it blind, and judges it so.
    blind = await client.post(f"/api/v1/runs/{run_id}/task", json={"blind": True})
    assert blind.status_code == 200
    item = await next_item(client, run_id, "alice")
    assert item and item["answers"][0]["model"] is None
    judged = await judge(client, run_id, item, "alice")
    assert judged["blind"] is True
    state: AppState = app.state.playground
    async with state.sessions() as session:
        assert list(await session.scalars(select(Judgement.blind))) == [True]
    # And the other way: bob is given an item blind, then shown its names: not blind.
    assert await next_item(client, run_id, "bob")
    await client.post(f"/api/v1/runs/{run_id}/task", json={"blind": False})
    other = await next_item(client, run_id, "bob")
    assert other and other["answers"][0]["model"] is not None
    assert (await judge(client, run_id, other, "bob"))["blind"] is False

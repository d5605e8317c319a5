"""A rater's recap names only this run's items; a task's blind setting is what judgements say."""

from __future__ import annotations

import httpx

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

"""The leaderboard's and training exports' `run` and `prompt_set` filters: judgements made in
the annotation queues of that run, or of every run of that prompt set."""

from __future__ import annotations

import json

import httpx

from tests.annotation.helpers import judge, next_item
from tests.runs.helpers import make_set, start_run, wait_run


async def judged_run(client: httpx.AsyncClient, set_name: str, items: int) -> int:
    """A run of a new set, opened for rating, with every item judged once by alice."""
    await make_set(client, set_name, items)
    run = await start_run(client, set_name)
    await wait_run(client, run["id"])
    response = await client.post(f"/api/v1/runs/{run['id']}/task", json={})
    assert response.status_code == 200, response.text
    for _ in range(items):
        item = await next_item(client, run["id"], "alice")
        assert item
        await judge(client, run["id"], item, "alice")
    return int(run["id"])


async def test_run_and_prompt_set_filters_select_the_queue_judgements(
    client: httpx.AsyncClient,
) -> None:
    first = await judged_run(client, "first-set", 3)
    second = await judged_run(client, "second-set", 2)

    async def pairs(**query: str | int) -> int:
        response = await client.get("/api/v1/leaderboard", params=query)
        assert response.status_code == 200, response.text
        return int(response.json()["pairs"])

    assert await pairs() == 5
    assert await pairs(run=first) == 3
    assert await pairs(run=second) == 2
    assert await pairs(prompt_set="second-set") == 2
    sets = (await client.get("/api/v1/prompt-sets")).json()
    first_set_id = next(s["id"] for s in sets if s["name"] == "first-set")
    assert await pairs(prompt_set=str(first_set_id)) == 3
    assert await pairs(prompt_set="no-such-set") == 0
    assert await pairs(run=first, prompt_set="second-set") == 0
    assert (await client.get("/api/v1/leaderboard", params={"run": "x"})).status_code == 422
    # The training exports take the same filters.
    dpo = await client.get("/api/v1/exports/dpo.jsonl", params={"run": second})
    assert dpo.status_code == 200, dpo.text
    records = [json.loads(line) for line in dpo.text.splitlines() if line]
    assert len(records) == 2

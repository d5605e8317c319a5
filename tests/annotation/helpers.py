"""Shared steps of the annotation tests: a finished run opened as a rating task."""

from __future__ import annotations

from typing import Any

import httpx

from tests.runs.helpers import make_set, start_run, wait_run


async def rated_run(
    client: httpx.AsyncClient, items: int, models: list[str] | None = None, **task: Any
) -> int:
    """A run of `items` items, answered by the fakes, opened for rating; its id."""
    await make_set(client, "rate-me", items)
    run = await start_run(client, "rate-me", models)
    await wait_run(client, run["id"])
    response = await client.post(f"/api/v1/runs/{run['id']}/task", json=task)
    assert response.status_code == 200, response.text
    return int(run["id"])


async def next_item(client: httpx.AsyncClient, run_id: int, rater: str) -> dict[str, Any] | None:
    """The rater's next item (None when nothing is left for them)."""
    response = await client.get(f"/api/v1/runs/{run_id}/task/next", params={"rater": rater})
    assert response.status_code == 200, response.text
    item: dict[str, Any] | None = response.json()["item"]
    return item


async def judge(
    client: httpx.AsyncClient, run_id: int, item: dict[str, Any], rater: str, **vote: Any
) -> dict[str, Any]:
    """Judge an item (default: the first shown answer wins)."""
    body = {"rater": rater, **(vote or {"winner": "a"})}
    url = f"/api/v1/runs/{run_id}/task/items/{item['run_item_id']}/judgement"
    response = await client.post(url, json=body)
    assert response.status_code == 201, response.text
    judged: dict[str, Any] = response.json()
    return judged


async def task(client: httpx.AsyncClient, run_id: int) -> dict[str, Any]:
    """The task's settings and progress."""
    response = await client.get(f"/api/v1/runs/{run_id}/task")
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out

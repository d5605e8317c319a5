"""The annotation queue over the JSON API: assignment, overlap, skips, leases, completion."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.annotation.models import Assignment
from app.config import ModelsFile, Settings
from app.db import utcnow
from app.main import create_app
from tests.annotation.helpers import judge, next_item, rated_run, task
from tests.support import ThreadedServer


async def test_two_raters_get_different_items(client: httpx.AsyncClient) -> None:
    run_id = await rated_run(client, 3)
    alice = await next_item(client, run_id, "alice")
    bob = await next_item(client, run_id, "bob")
    assert alice and bob and alice["run_item_id"] != bob["run_item_id"]
    # Asking again gives the same item back (held for the rater), not a new one.
    again = await next_item(client, run_id, "alice")
    assert again and again["run_item_id"] == alice["run_item_id"]
    assert [a["label"] for a in alice["answers"]] == ["Model 1", "Model 2"]
    assert all(a["model"] is None for a in alice["answers"])
    assert alice["prompt"].startswith("Question number")


async def test_overlap_two_gives_each_item_to_two_distinct_raters(
    client: httpx.AsyncClient,
) -> None:
    run_id = await rated_run(client, 2, overlap=2)
    judged_by: dict[int, list[str]] = {}
    for rater in ("alice", "bob", "carol"):
        while (item := await next_item(client, run_id, rater)) is not None:
            await judge(client, run_id, item, rater)
            judged_by.setdefault(item["run_item_id"], []).append(rater)
    assert len(judged_by) == 2
    assert all(len(set(raters)) == len(raters) == 2 for raters in judged_by.values())
    # Every item has its two judgements: carol gets nothing.
    assert await next_item(client, run_id, "carol") is None
    progress = await task(client, run_id)
    assert (progress["complete"], progress["judgements"], progress["wanted"]) == (2, 4, 4)
    assert {r["rater"]: r["judged"] for r in progress["raters"]} == {"alice": 2, "bob": 2}


async def test_concurrent_requests_never_hand_out_an_item_twice(
    client: httpx.AsyncClient,
) -> None:
    run_id = await rated_run(client, 6)
    raters = [f"rater{i}" for i in range(6)]
    items = await asyncio.gather(*(next_item(client, run_id, r) for r in raters))
    ids = [item["run_item_id"] for item in items if item]
    assert len(ids) == 6 and len(set(ids)) == 6
    # All taken: a seventh rater finds nothing free while the leases last.
    assert await next_item(client, run_id, "late") is None


async def test_concurrent_requests_with_overlap_two(client: httpx.AsyncClient) -> None:
    run_id = await rated_run(client, 2, overlap=2)
    items = await asyncio.gather(*(next_item(client, run_id, f"r{i}") for i in range(5)))
    given = [item["run_item_id"] for item in items if item]
    # Two items, two raters each: four leases, no item three times, one rater without.
    assert len(given) == 4 and all(given.count(i) == 2 for i in set(given))


async def test_skip_passes_the_item_on_and_never_back(client: httpx.AsyncClient) -> None:
    run_id = await rated_run(client, 2)
    first = await next_item(client, run_id, "alice")
    assert first
    url = f"/api/v1/runs/{run_id}/task/items/{first['run_item_id']}/skip"
    response = await client.post(url, json={"rater": "alice"})
    assert response.status_code == 200 and response.json()["skipped"] is True
    second = await next_item(client, run_id, "alice")
    assert second and second["run_item_id"] != first["run_item_id"]
    await judge(client, run_id, second, "alice")
    assert await next_item(client, run_id, "alice") is None
    # Bob gets the skipped item.
    bobs = await next_item(client, run_id, "bob")
    assert bobs and bobs["run_item_id"] == first["run_item_id"]
    progress = await task(client, run_id)
    assert {r["rater"]: (r["judged"], r["skipped"]) for r in progress["raters"]} == {
        "alice": (1, 1)
    }
    # Skipping an item never given, or judged already: 409.
    done = f"/api/v1/runs/{run_id}/task/items/{second['run_item_id']}/skip"
    assert (await client.post(done, json={"rater": "alice"})).status_code == 409
    assert (await client.post(done, json={"rater": "zed"})).status_code == 409


async def test_an_expired_lease_frees_the_item(app: FastAPI, client: httpx.AsyncClient) -> None:
    run_id = await rated_run(client, 1)
    held = await next_item(client, run_id, "alice")
    assert held and await next_item(client, run_id, "bob") is None
    # The lease runs out (moved into the past rather than waited for).
    async with app.state.playground.sessions() as session, session.begin():
        await session.execute(update(Assignment).values(expires_at=utcnow() - timedelta(seconds=1)))
    bobs = await next_item(client, run_id, "bob")
    assert bobs and bobs["run_item_id"] == held["run_item_id"]
    # Alice's work still counts if she sends it after all; then the item is complete.
    judged = await judge(client, run_id, held, "alice")
    assert judged["item_complete"] is True
    assert await next_item(client, run_id, "carol") is None


async def test_completion_and_judgement_rules(client: httpx.AsyncClient) -> None:
    run_id = await rated_run(client, 1)
    item = await next_item(client, run_id, "alice")
    assert item
    url = f"/api/v1/runs/{run_id}/task/items/{item['run_item_id']}/judgement"
    # Not given to bob; winner with a bad letter; ranking missing an answer.
    assert (await client.post(url, json={"rater": "bob", "winner": "a"})).status_code == 409
    bad = {"rater": "alice", "ranking": [["a"]]}
    assert (await client.post(url, json=bad)).status_code == 422
    seen = {"rater": "alice", "winner": "b", "generation_ids": {"a": 1, "b": 1}}
    assert (await client.post(url, json=seen)).status_code == 409
    # Blind (the default): no generation ids, which follow model order and would tell.
    assert [a["generation_id"] for a in item["answers"]] == [None, None]
    judged = await judge(client, run_id, item, "alice", winner="b")
    assert judged["ranking"] == [["b"], ["a"]] and judged["blind"] is True
    assert judged["item_complete"] is True and judged["models"] is None
    assert await next_item(client, run_id, "alice") is None
    progress = await task(client, run_id)
    assert (progress["complete"], progress["items"], progress["ready"]) == (1, 1, 1)


async def test_reveal_names_after_judging(client: httpx.AsyncClient) -> None:
    run_id = await rated_run(client, 1, reveal_names_after_judging=True)
    item = await next_item(client, run_id, "alice")
    assert item and all(a["model"] is None for a in item["answers"])
    judged = await judge(client, run_id, item, "alice", winner="tie")
    assert sorted(judged["models"].values()) == ["base", "chat"]
    assert judged["ranking"] == [["a", "b"]]


async def test_ranking_with_three_models_in_the_rater_order(client: httpx.AsyncClient) -> None:
    run_id = await rated_run(client, 1, ["base", "chat", "base-2"], blind=False)
    item = await next_item(client, run_id, "alice")
    assert item and len(item["answers"]) == 3
    shown = {a["answer"]: a["model"] for a in item["answers"]}
    judged = await judge(client, run_id, item, "alice", ranking=[["c"], ["a", "b"]])
    assert judged["ranking"] == [["c"], ["a", "b"]]
    lines = (await client.get("/api/v1/exports/judgements.jsonl")).text.splitlines()
    record = json.loads(lines[-1])
    ranks = {a["model"]: a["rank"] for a in record["answers"]}
    assert ranks[shown["c"]] == 1 and ranks[shown["a"]] == ranks[shown["b"]] == 2
    # Each judged answer records where this rater saw it.
    positions = {a["model"]: a["position"] for a in record["answers"]}
    assert {positions[shown[letter]] for letter in "abc"} == {0, 1, 2}
    assert positions[shown["c"]] == 2


async def test_queue_judgements_are_in_the_exports(client: httpx.AsyncClient) -> None:
    run_id = await rated_run(client, 2)
    for rater in ("alice", "bob"):
        item = await next_item(client, run_id, rater)
        assert item
        await judge(client, run_id, item, rater, winner="a")
    response = await client.get("/api/v1/exports/ratings.csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["rater"] for r in rows) == ["alice", "bob"]
    for row in rows:
        assert {row["model_a"], row["model_b"]} == {"base", "chat"}
        assert row["prompt"].startswith("Question number") and row["blind"] in ("true", "True")
        assert row["response_a"] and row["response_b"]
    lines = (await client.get("/api/v1/exports/judgements.jsonl")).text.splitlines()
    assert len(lines) == 2
    assert {json.loads(line)["rater"] for line in lines} == {"alice", "bob"}
    # The conversation page of a queue item still renders.
    record = json.loads(lines[0])
    page = await client.get(f"/c/{record['conversation_id']}")
    assert page.status_code == 200 and "Question number" in page.text
    assert (await client.get("/history")).status_code == 200


async def test_task_errors(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/runs/999/task")).status_code == 404
    assert (await client.post("/api/v1/runs/999/task", json={})).status_code == 404
    run_id = await rated_run(client, 1)
    for body in ({"overlap": 0}, {"overlap": 11}, {"guidelines": "x" * 5001}, {"other": 1}):
        response = await client.post(f"/api/v1/runs/{run_id}/task", json=body)
        assert response.status_code == 422, body
    response = await client.get(f"/api/v1/runs/{run_id}/task/next", params={"rater": " "})
    assert response.status_code == 422


@pytest.mark.parametrize("overlap", [1, 3])
async def test_settings_can_change(client: httpx.AsyncClient, overlap: int) -> None:
    run_id = await rated_run(client, 1, guidelines="Prefer short answers.")
    response = await client.post(f"/api/v1/runs/{run_id}/task", json={"overlap": overlap})
    out = response.json()
    assert out["overlap"] == overlap and out["wanted"] == overlap and out["guidelines"] == ""


async def test_queue_judgements_count_in_the_leaderboard(client: httpx.AsyncClient) -> None:
    run_id = await rated_run(client, 3)
    while (item := await next_item(client, run_id, "alice")) is not None:
        await judge(client, run_id, item, "alice", winner="a")
    board = (await client.get("/api/v1/leaderboard")).json()
    assert board["pairs"] == 3
    assert {m["name"] for m in board["models"]} == {"base", "chat"}


def test_two_app_replicas_never_hand_out_an_item_twice(
    settings: Settings, models: ModelsFile
) -> None:
    """Two apps on one database, each on its own thread and event loop (like two replicas),
    asked at the same instant: the database, not an in-process lock, keeps raters apart."""
    with (
        ThreadedServer(create_app(settings, models)) as one,
        ThreadedServer(create_app(settings, models)) as two,
        httpx.Client() as http,
    ):
        sets = {"name": "s", "items": [{"prompt": f"p{i}"} for i in range(4)]}
        assert http.post(one.url + "/api/v1/prompt-sets", json=sets).status_code == 201
        body = {"prompt_set": "s", "models": ["base", "chat"]}
        run_id = http.post(one.url + "/api/v1/runs", json=body).json()["id"]
        deadline = time.monotonic() + 30
        while http.get(f"{one.url}/api/v1/runs/{run_id}").json()["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.05)  # polling for the run's end, not timing the test
        assert http.post(f"{one.url}/api/v1/runs/{run_id}/task", json={}).status_code == 200
        urls = [one.url, two.url] * 4
        start = threading.Barrier(len(urls))

        def ask(number: int) -> int | None:
            start.wait()
            with httpx.Client(timeout=30) as own:
                response = own.get(
                    f"{urls[number]}/api/v1/runs/{run_id}/task/next",
                    params={"rater": f"r{number}"},
                )
            assert response.status_code == 200, response.text
            item = response.json()["item"]
            return None if item is None else int(item["run_item_id"])

        with ThreadPoolExecutor(len(urls)) as pool:
            given = [i for i in pool.map(ask, range(len(urls))) if i is not None]
    assert len(given) == 4 and len(set(given)) == 4

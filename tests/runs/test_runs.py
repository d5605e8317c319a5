"""Batch runs on the fake servers: lifecycle, concurrency bound, pause/resume, failures, exports."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.config import ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.conftest import csrf_headers
from tests.runs.helpers import make_set, start_run, wait_run


async def test_run_answers_every_item_with_provenance(client: httpx.AsyncClient) -> None:
    await make_set(client, "five", 5)
    run = await start_run(client, "five", params={"temperature": 0.3, "seed": 7})
    assert run["total"] == 10 and run["params"]["seed"] == 7
    done = await wait_run(client, run["id"])
    assert (done["done"], done["failed"]) == (10, 0)
    assert done["tokens_per_second"] and done["tokens_per_second"] > 0
    lines = (await client.get(f"/api/v1/runs/{run['id']}/results.jsonl")).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["item"] for r in records] == [f"q{i}" for i in range(5)]
    base, chat = records[0]["answers"]
    assert base["model"] == "base" and base["prompt_text"] and base["revision"] == "rev-base-1"
    assert chat["messages"][-1]["content"] == "Question number 0?"
    assert base["seed"] == chat["seed"] == 7 and base["params"]["temperature"] == 0.3
    assert base["status"] == "done" and base["text"]


async def test_csv_export_is_side_by_side_and_neutralised(client: httpx.AsyncClient) -> None:
    body = {"name": "evil", "items": [{"id": "x", "prompt": "=HYPERLINK(1)"}]}
    assert (await client.post("/api/v1/prompt-sets", json=body)).status_code == 201
    run = await start_run(client, "evil")
    await wait_run(client, run["id"])
    response = await client.get(f"/api/v1/runs/{run['id']}/results.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:4] == ["item", "prompt", "tags", "reference"]
    assert "base answer" in rows[0] and "chat answer" in rows[0]
    assert rows[1][1] == "'=HYPERLINK(1)"
    assert rows[1][rows[0].index("chat status")] == "done"


async def test_bad_run_requests_are_refused(client: httpx.AsyncClient) -> None:
    await make_set(client, "s", 1)
    for body, status in [
        ({"prompt_set": "s", "models": ["base"]}, 422),
        ({"prompt_set": "s", "models": ["base", "nope"]}, 422),
        ({"prompt_set": "s", "models": ["base", "base"]}, 422),
        ({"prompt_set": "missing", "models": ["base", "chat"]}, 404),
    ]:
        assert (await client.post("/api/v1/runs", json=body)).status_code == status, body
    assert (await client.post("/api/v1/runs/999/pause", json={})).status_code == 404
    form = await client.post("/api/v1/runs/1/pause", data={"x": "1"})
    assert form.status_code == 415


async def test_concurrency_is_bounded_per_server(
    settings: Settings, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    settings.run_concurrency = 3
    for server in (base_server, chat_server):
        server.config.token_delay = 0.005
        server.state.max_in_flight = 0
    async with LifespanManager(create_app(settings, models)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await make_set(client, "twelve", 12)
            run = await start_run(client, "twelve")
            await wait_run(client, run["id"])
    assert base_server.state.max_in_flight == 3
    assert chat_server.state.max_in_flight == 3


async def test_a_failing_server_does_not_stop_the_run_and_retry_fixes_it(
    client: httpx.AsyncClient, chat_server: FakeServer
) -> None:
    await make_set(client, "four", 4)
    chat_server.config.fail_status = 500
    run = await start_run(client, "four", models=["base", "chat", "down"])
    done = await wait_run(client, run["id"])
    assert (done["done"], done["failed"], done["total"]) == (4, 8, 12)
    assert {f["model"] for f in done["failures"]} == {"chat", "down"}
    page = await client.get(f"/runs/{run['id']}", params={"status": "failed"})
    assert "8 failed answers" in page.text and ">Retry failures<" in page.text
    chat_server.config.fail_status = None
    retried = await client.post(f"/api/v1/runs/{run['id']}/retry", json={})
    assert retried.status_code == 200
    again = await wait_run(client, run["id"])
    assert (again["done"], again["failed"]) == (8, 4)
    assert {f["model"] for f in again["failures"]} == {"down"}


async def test_pause_resume_and_cancel(client: httpx.AsyncClient, base_server: FakeServer) -> None:
    base_server.config.token_delay = 0.02
    await make_set(client, "ten", 10)
    run = await start_run(client, "ten")
    rid = run["id"]
    await wait_run(client, rid, until=lambda r: r["done"] >= 2)
    watching = await client.get(f"/runs/{rid}/progress", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in watching.text and "HX-Refresh" not in watching.headers
    paused = (await client.post(f"/api/v1/runs/{rid}/pause", json={})).json()
    assert paused["status"] == "paused" and paused["running"] == 0
    assert (await client.post(f"/api/v1/runs/{rid}/pause", json={})).status_code == 409
    requests_then = len(base_server.requests)
    still = (await client.get(f"/api/v1/runs/{rid}")).json()
    assert still["done"] == paused["done"] and len(base_server.requests) == requests_then
    base_server.config.token_delay = 0
    assert (await client.post(f"/api/v1/runs/{rid}/resume", json={})).status_code == 200
    done = await wait_run(client, rid)
    assert (done["done"], done["failed"]) == (20, 0)
    assert (await client.post(f"/api/v1/runs/{rid}/cancel", json={})).status_code == 409


async def test_cancel_keeps_what_is_done(
    client: httpx.AsyncClient, base_server: FakeServer
) -> None:
    base_server.config.token_delay = 0.05
    await make_set(client, "slow", 30)
    run = await start_run(client, "slow")
    cancelled = (await client.post(f"/api/v1/runs/{run['id']}/cancel", json={})).json()
    assert cancelled["status"] == "cancelled" and cancelled["running"] == 0
    assert cancelled["done"] < 60
    retry = await client.post(f"/api/v1/runs/{run['id']}/retry", json={})
    assert retry.status_code == 409 and "cancelled" in retry.json()["detail"]


@pytest.mark.parametrize("blind", [False, True])
async def test_run_pages(client: httpx.AsyncClient, blind: bool) -> None:
    headers = await csrf_headers(client)
    sets = (await client.get("/api/v1/prompt-sets")).json()
    knowledge = next(s for s in sets if s["name"] == "general-knowledge")
    form = {
        "prompt_set": str(knowledge["id"]),
        "models": ["base", "chat"],
        "max_tokens": "8",
        "seed": "3",
        **({"blind": "on"} if blind else {}),
    }
    response = await client.post("/runs", data=form, headers=headers)
    assert response.status_code == 204, response.text
    location = response.headers["HX-Location"]
    run_id = int(location.rsplit("/", 1)[1])
    await wait_run(client, run_id)
    page = await client.get(location)
    assert "What is the capital of France?" in page.text
    assert ">Pause<" not in page.text and ">Retry failures<" not in page.text  # done, no failures
    assert ("Model 1" in page.text) is blind
    assert (">base<" in page.text) is not blind
    fragment = await client.get(f"{location}/progress")
    assert "60</span> done" in fragment.text and "every 1s" not in fragment.text
    polled = await client.get(f"{location}/progress", headers={"HX-Request": "true"})
    assert polled.headers["HX-Refresh"] == "true"
    listing = await client.get("/runs")
    assert f'href="/runs/{run_id}"' in listing.text
    no_token = await client.post(f"/runs/{run_id}/pause", data={})
    assert no_token.status_code == 403
    refused = await client.post("/runs", data={**form, "models": ["base"]}, headers=headers)
    assert refused.status_code == 422

"""Token shift over a whole run against real vLLM (CPU build, tiny models): every chat answer
of a small run is scored, stored, reported and exported; the cost of the scoring is printed."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.conftest import RealServers
from tests.runs.helpers import make_set, start_run, wait_run

pytestmark = pytest.mark.vllm


async def test_a_small_run_is_analysed_in_bulk(
    client: httpx.AsyncClient, app: FastAPI, real_servers: RealServers
) -> None:
    await make_set(client, "tiny", 4)
    body = {"params": {"max_tokens": 16, "seed": 3, "temperature": 0.8}}
    run = await start_run(client, "tiny", ["base", "chat"], **body)
    done = await wait_run(client, run["id"], timeout=600)
    assert (done["done"], done["failed"]) == (8, 0)
    started = time.perf_counter()
    response = await client.post(f"/api/v1/runs/{run['id']}/token-shift", json={})
    assert response.status_code == 202, response.text
    await app.state.shift_executor.wait(run["id"])
    elapsed = time.perf_counter() - started
    status = (await client.get(f"/api/v1/runs/{run['id']}/token-shift")).json()
    assert (status["done"], status["failed"], status["total"]) == (4, 0, 4), status
    print(f"\nrun token shift: 4 chat answers of 16 tokens scored in {elapsed * 1000:.0f} ms")
    lines = (await client.get(f"/api/v1/runs/{run['id']}/token-shift.jsonl")).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4
    for record in records:
        assert record["model"] == "chat" and record["base_model"] == "base"
        assert record["tokens"] == len(record["shifted"]) == len(record["ranks"]) > 0
        assert all(rank >= 1 for rank in record["ranks"])
        shifted = sum(record["shifted"])
        assert record["counts"]["shifted"] == shifted
        assert record["shifted_ratio"] == pytest.approx(shifted / record["tokens"])
    page = await client.get(f"/runs/{run['id']}/token-shift")
    assert page.status_code == 200 and "chat under base" in page.text

"""SQLite's vote batches: queued votes share a transaction, yet each succeeds or fails alone."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from app.comparisons import recording, vote_batches
from app.comparisons.models import Conversation
from app.comparisons.voting import Verdict
from app.web.state import AppState
from playground_tools.fake_vllm import FakeServer
from tests.comparisons.test_api import compare, short


def _verdict(rater: str, comment: str | None = None) -> Verdict:
    return Verdict(rater, {"a": 1, "b": 2}, {"a": 4}, comment)


async def test_a_batch_writes_every_vote_and_one_bad_vote_fails_alone(
    app: FastAPI,
    client: httpx.AsyncClient,
    base_server: FakeServer,
    chat_server: FakeServer,
) -> None:
    short(base_server, chat_server)
    kept, doomed = [(await compare(client, prompt=p))["id"] for p in ("One", "Two")]
    state: AppState = app.state.playground
    engine = state.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("batches are SQLite's")
    async with engine.connect() as conn:
        kept_target = await recording.load(conn, kept, None)
        doomed_target = await recording.load(conn, doomed, None)
    # Read, then the conversation goes away before the write: its vote's rows cannot be stored.
    async with engine.begin() as conn:
        await conn.execute(delete(Conversation).where(Conversation.id == doomed))
    lock = asyncio.Lock()
    async with lock:  # hold the queue, so that all four votes wait behind it together
        calls = [
            asyncio.ensure_future(vote_batches.submit(engine, lock, target, verdict))
            for target, verdict in (
                (kept_target, _verdict("r1")),
                (doomed_target, _verdict("r2")),
                (kept_target, _verdict("r1", comment="later")),  # same rater and turn
                (kept_target, _verdict("r3")),
            )
        ]
        await asyncio.sleep(0)
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[1], Exception)
    first, later, other = results[0], results[2], results[3]
    assert isinstance(first, recording.Recorded) and isinstance(later, recording.Recorded)
    assert isinstance(other, recording.Recorded)
    assert first.id == later.id != other.id
    detail = (await client.get(f"/api/v1/comparisons/{kept}")).json()
    votes = {v["rater"]: v for v in detail["turns"][0]["votes"]}
    assert sorted(votes) == ["r1", "r3"]
    assert votes["r1"]["comment"] == "later"
    assert votes["r1"]["winner"] == "a" and votes["r1"]["scores"] == {"a": 4}

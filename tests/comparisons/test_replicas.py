"""A second app process on the same database leaves the first one's generations alone.

Before owners and heartbeats, every start marked every unfinished generation `interrupted`,
while the first process went on generating it (and later stored it `done`); a vote through the
second process was then accepted on an answer that was still being written.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.config import ModelsFile, Settings
from app.db import create_engine, create_sessionmaker, utcnow
from app.generation.records import AppInstance, Generation
from playground_tools.fake_vllm import FakeServer
from tests.comparisons.test_faults import app_client
from tests.conftest import csrf_headers

JSON = dict[str, Any]


async def _statuses(settings: Settings) -> dict[int, tuple[str, str | None]]:
    engine = create_engine(settings.resolved_database_url())
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(select(Generation.id, Generation.status, Generation.owner))
            return {gid: (status, owner) for gid, status, owner in rows.tuples()}
    finally:
        await engine.dispose()


async def _start_comparison(client: httpx.AsyncClient) -> str:
    """Start through the form (it returns at once, while the answers are generated)."""
    headers = await csrf_headers(client)
    created = await client.post("/c", data={"prompt": "Tell a story"}, headers=headers)
    assert created.status_code == 204, created.text
    return created.headers["HX-Location"].rsplit("/", 1)[1]


async def test_second_replica_leaves_running_generations_alone_and_refuses_early_votes(
    settings: Settings, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    for server in (base_server, chat_server):
        server.config.answer_words = 40
        server.config.token_delay = 0.02
    async with app_client(settings, models) as first:
        conversation = await _start_comparison(first)
        await asyncio.sleep(0.2)
        async with app_client(settings, models) as second:
            statuses = await _statuses(settings)
            assert {status for status, _ in statuses.values()} <= {"pending", "running"}
            assert all(owner is not None for _, owner in statuses.values())
            early = await second.post(
                f"/api/v1/comparisons/{conversation}/votes", json={"rater": "r", "winner": "a"}
            )
            assert early.status_code == 409, early.text
            # The first process finishes its own generations; the vote then counts.
            for _ in range(200):
                if {s for s, _ in (await _statuses(settings)).values()} == {"done"}:
                    break
                await asyncio.sleep(0.05)
            assert {s for s, _ in (await _statuses(settings)).values()} == {"done"}
            late = await second.post(
                f"/api/v1/comparisons/{conversation}/votes", json={"rater": "r", "winner": "a"}
            )
            assert late.status_code == 201, late.text


async def test_a_dead_owners_generations_are_interrupted_at_the_next_start(
    settings: Settings, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    for server in (base_server, chat_server):
        server.config.answer_words = 40
        server.config.token_delay = 0.05
    async with app_client(settings, models) as first:
        conversation = await _start_comparison(first)
        await asyncio.sleep(0.2)
        # Make the first process look dead: its heartbeat a minute old, as after kill -9.
        engine = create_engine(settings.resolved_database_url())
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                instance = (await session.scalars(select(AppInstance))).one()
                instance.heartbeat_at = utcnow() - timedelta(minutes=1)
        finally:
            await engine.dispose()
        async with app_client(settings, models) as second:
            statuses = await _statuses(settings)
            assert {status for status, _ in statuses.values()} == {"interrupted"}
            detail = (await second.get(f"/api/v1/comparisons/{conversation}")).json()
            assert [g["status"] for g in detail["turns"][0]["generations"]] == ["interrupted"] * 2

"""A run interrupted by a restart resumes where it stopped: nothing generated twice or skipped."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from asgi_lifespan import LifespanManager

from app.config import ModelsFile, Settings, to_async_url
from app.db import create_engine
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.runs.helpers import make_set, start_run, wait_run

ITEMS = 12


async def _answers(settings: Settings) -> list[tuple[int, str, str]]:
    """(run item, slot, status) of every generation of the run."""
    engine = create_engine(to_async_url(settings.resolved_database_url()))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.text(
                    "SELECT run_item_id, slot, status FROM generations "
                    "WHERE run_item_id IS NOT NULL ORDER BY id"
                )
            )
            return [(int(r[0]), str(r[1]), str(r[2])) for r in rows.all()]
    finally:
        await engine.dispose()


async def test_restart_mid_run_resumes_without_duplicates(
    settings: Settings, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    settings.run_concurrency = 3
    for server in (base_server, chat_server):
        server.config.token_delay = 0.01
    async with LifespanManager(create_app(settings, models)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await make_set(client, "restart", ITEMS)
            run = await start_run(client, "restart")
            before = await wait_run(client, run["id"], until=lambda r: r["done"] >= 4)
            assert before["done"] < 2 * ITEMS
    # The app stopped with answers in flight: they were cancelled, the run stays running.
    stopped = await _answers(settings)
    done_before = {(item, slot) for item, slot, status in stopped if status == "done"}
    assert any(status == "cancelled" for _, _, status in stopped)
    for server in (base_server, chat_server):
        server.config.token_delay = 0
        server.requests.clear()
    async with LifespanManager(create_app(settings, models)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            after = await wait_run(client, run["id"])
    assert (after["done"], after["failed"]) == (2 * ITEMS, 0)
    final = await _answers(settings)
    done = [(item, slot) for item, slot, status in final if status == "done"]
    assert len(done) == len(set(done)) == 2 * ITEMS  # exactly one done answer per item and model
    assert done_before <= set(done)
    # Only what was not done was asked for again.
    asked = len(base_server.requests) + len(chat_server.requests)
    assert asked == 2 * ITEMS - len(done_before)


async def test_after_a_crash_rows_left_running_are_asked_again_once(
    settings: Settings, models: ModelsFile, base_server: FakeServer
) -> None:
    base_server.config.token_delay = 0.05
    async with LifespanManager(create_app(settings, models)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await make_set(client, "crash", 4)
            run = await start_run(client, "crash")
            await wait_run(client, run["id"], until=lambda r: r["done"] >= 4)
    # As a crash would leave them: the cancelled answers still "running", the run "running".
    engine = create_engine(to_async_url(settings.resolved_database_url()))
    async with engine.begin() as connection:
        crashed = await connection.execute(
            sa.text("UPDATE generations SET status = 'running' WHERE status = 'cancelled'")
        )
    await engine.dispose()
    assert crashed.rowcount > 0
    base_server.config.token_delay = 0
    async with LifespanManager(create_app(settings, models)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            after = await wait_run(client, run["id"])
    assert (after["done"], after["failed"]) == (8, 0)
    final = await _answers(settings)
    done = [(item, slot) for item, slot, status in final if status == "done"]
    assert len(done) == len(set(done)) == 8
    assert not any(status in ("running", "pending") for _, _, status in final)

"""A process that starts beside one driving a run leaves that run alone (it used to take it
over: its own driver marked the first one's answers interrupted and asked them again)."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from app.config import ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.runs.helpers import make_set, start_run, wait_run
from tests.runs.test_restart import _answers


def _hold(servers: tuple[FakeServer, ...], tokens: int | None) -> None:
    for server in servers:
        answer = httpx.post(f"{server.root_url}/fake/config", json={"hold_after_tokens": tokens})
        answer.raise_for_status()


async def test_a_second_process_does_not_resume_a_run_another_live_process_drives(
    settings: Settings, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    servers = (base_server, chat_server)
    _hold(servers, 2)
    try:
        first_app, second_app = create_app(settings, models), create_app(settings, models)
        async with LifespanManager(first_app) as first:
            transport = httpx.ASGITransport(app=first.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                await make_set(c, "beside", 3)
                run = await start_run(c, "beside")
                await wait_run(c, run["id"], until=lambda r: r["running"] > 0)
                async with LifespanManager(second_app):
                    assert not second_app.state.run_executor.active(run["id"])
                    assert first_app.state.run_executor.active(run["id"])
                _hold(servers, None)
                done = await wait_run(c, run["id"])
    finally:
        _hold(servers, None)
    assert (done["done"], done["failed"]) == (6, 0)
    answers = await _answers(settings)
    assert sorted((item, slot) for item, slot, _ in answers) == sorted(
        {(item, slot) for item, slot, _ in answers}
    )

"""Token shift over a whole run on the fake servers: bound, idempotence, failures, resume."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import delete, func, select, update

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.lens.models import RunShiftJob, TokenShiftAnalysis
from app.lens.shift import ShiftAnalysis
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.lens.bulk_helpers import analyse_run, finished_run, scoring_requests, stored


async def test_every_chat_answer_is_analysed_once_and_stored_as_usual(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer
) -> None:
    run = await finished_run(client, 4)
    before = await client.get(f"/api/v1/runs/{run['id']}/token-shift")
    assert before.json()["status"] == "none" and before.json()["total"] == 4
    status = await analyse_run(client, app, run["id"])
    assert (status["status"], status["done"], status["failed"], status["total"]) == (
        "done", 4, 0, 4,
    )  # fmt: skip
    assert status["pending"] == 0 and status["failures"] == []
    analyses = await stored(app)
    assert len(analyses) == 4 and {base for _, base in analyses.values()} == {"base"}
    # One scoring request per answer, as for a single answer.
    assert len(scoring_requests(base_server.state.requests)) == 4
    # Each is an ordinary analysis row, in the lens's own stored format.
    async with app.state.playground.sessions() as session:
        rows = list(await session.scalars(select(TokenShiftAnalysis)))
    for row in rows:
        result = ShiftAnalysis.from_json(row.analysis)
        assert (row.total_tokens, row.shifted_ratio) == (result.total, result.shifted_ratio)
        assert row.base_served_model == "tiny-base" and row.requests == 2


async def test_a_second_start_skips_what_is_analysed(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer
) -> None:
    run = await finished_run(client, 3)
    await analyse_run(client, app, run["id"])
    first = await stored(app)
    base_server.state.requests.clear()
    again = await analyse_run(client, app, run["id"])
    assert again["done"] == 3 and again["status"] == "done"
    assert scoring_requests(base_server.state.requests) == []
    assert await stored(app) == first


async def test_concurrency_is_bounded_per_base_server(
    settings: Settings, models: ModelsFile, base_server: FakeServer
) -> None:
    settings.run_concurrency = 2
    app = create_app(settings, models)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            run = await finished_run(client, 8)
            # Each scoring request is held at the fake a while, so the bound is what limits.
            base_server.config.first_token_delay = 0.02
            base_server.state.max_in_flight = 0
            status = await analyse_run(client, app, run["id"])
    assert status["done"] == 8
    assert len(scoring_requests(base_server.state.requests)) == 8
    assert base_server.state.max_in_flight == 2


async def test_failures_are_listed_and_retried(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer
) -> None:
    run = await finished_run(client, 3)
    base_server.config.fail_status = 500
    failed = await analyse_run(client, app, run["id"])
    assert (failed["status"], failed["done"], failed["failed"]) == ("done", 0, 3)
    assert [f["item"] for f in failed["failures"]] == ["q0", "q1", "q2"]
    assert all(f["model"] == "chat" and f["base"] == "base" for f in failed["failures"])
    assert "500" in failed["failures"][0]["error"]
    assert await stored(app) == {}
    page = await client.get(f"/runs/{run['id']}/token-shift")
    assert "3 answers could not be analysed" in page.text and "Retry failures" in page.text
    base_server.config.fail_status = None
    retried = await analyse_run(client, app, run["id"])
    assert (retried["done"], retried["failed"], retried["failures"]) == (3, 0, [])


async def test_a_job_left_running_resumes_on_start(
    settings: Settings, models: ModelsFile, base_server: FakeServer
) -> None:
    app = create_app(settings, models)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            run = await finished_run(client, 3)
            await analyse_run(client, app, run["id"])
            # As if the process had stopped with one answer left and the job still running.
            async with app.state.playground.sessions() as session, session.begin():
                first = await session.scalar(select(func.min(TokenShiftAnalysis.id)))
                await session.execute(
                    delete(TokenShiftAnalysis).where(TokenShiftAnalysis.id == first)
                )
                await session.execute(update(RunShiftJob).values(status="running"))
    base_server.state.requests.clear()
    app = create_app(settings, models)
    async with LifespanManager(app) as manager:
        await app.state.shift_executor.wait(run["id"])
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            status = (await client.get(f"/api/v1/runs/{run['id']}/token-shift")).json()
    assert (status["status"], status["done"], status["total"]) == ("done", 3, 3)
    # Only the answer left was scored after the restart.
    assert len(scoring_requests(base_server.state.requests)) == 1


@pytest.fixture
def adapter_models(models: ModelsFile, base_server: FakeServer) -> ModelsFile:
    """The usual models plus a LoRA adapter of the base model, served by the base's server."""
    base_server.config.lora_modules = {"tuned": "/adapters/tuned"}
    tuned = ModelConfig(name="tuned", kind=ModelKind.CHAT, adapter_of="base", source="/x")
    return models.with_model(tuned)


async def test_an_adapter_defaults_to_its_base_and_a_run_without_one_must_choose(
    settings: Settings, adapter_models: ModelsFile
) -> None:
    app = create_app(settings, adapter_models)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            run = await finished_run(client, 2, ["chat", "tuned"])
            url = f"/api/v1/runs/{run['id']}/token-shift"
            refused = await client.post(url, json={})
            assert refused.status_code == 422
            assert "has no base model" in refused.json()["detail"]
            assert "choose one as base" in refused.json()["detail"]
            assert (await client.get(url)).json()["problem"] == refused.json()["detail"]
            assert (await client.post(url, json={"base": "chat"})).status_code == 422
            assert (await client.post(url, json={"base": "nope"})).status_code == 422
            status = await analyse_run(client, app, run["id"], base="base")
            assert (status["done"], status["total"], status["base"]) == (4, 4, "base")


async def test_refusals(client: httpx.AsyncClient, app: FastAPI) -> None:
    run = await finished_run(client, 1, ["base", "down"])
    url = f"/api/v1/runs/{run['id']}/token-shift"
    nothing = await client.post(url, json={})
    assert nothing.status_code == 422 and "no finished chat" in nothing.json()["detail"]
    assert (await client.post("/api/v1/runs/999/token-shift", json={})).status_code == 404
    assert (await client.get("/api/v1/runs/999/token-shift")).status_code == 404
    assert (await client.get("/api/v1/runs/999/token-shift.csv")).status_code == 404
    assert (await client.post(url, data={"x": "1"})).status_code == 415
    assert (await client.post(url, json={"top_k": 99})).status_code == 422
    assert (await client.post(url, json={"base": "x" * 65})).status_code == 422


async def test_different_tokenizers_fail_every_answer_without_scoring(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    run = await finished_run(client, 3)
    chat_server.config.vocab_id = "another-tokenizer"
    base_server.state.requests.clear()
    status = await analyse_run(client, app, run["id"])
    assert (status["done"], status["failed"]) == (0, 3)
    assert all("use different tokenizers" in f["error"] for f in status["failures"])
    assert scoring_requests(base_server.state.requests) == []

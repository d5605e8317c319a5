"""Shared steps of the run token-shift tests: a finished run, its job, controlled answers."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.generation.records import Generation
from app.lens.models import TokenShiftAnalysis
from app.runs.models import RunItem
from playground_tools.fake_vllm import FakeServer
from tests.runs.helpers import make_set, start_run, wait_run

JSON = dict[str, Any]


async def finished_run(
    client: httpx.AsyncClient, count: int, models: list[str] | None = None, name: str = "set"
) -> JSON:
    """A run of `count` items on base and chat (or these models), waited for."""
    await make_set(client, name, count)
    run = await start_run(client, name, models, params={"temperature": 0, "max_tokens": 16})
    return await wait_run(client, run["id"])


async def analyse_run(client: httpx.AsyncClient, app: FastAPI, run_id: int, **body: Any) -> JSON:
    """Start the run's token-shift analysis, wait for its driver, return the final status."""
    response = await client.post(f"/api/v1/runs/{run_id}/token-shift", json=body)
    assert response.status_code == 202, response.text
    await app.state.shift_executor.wait(run_id)
    status = await client.get(f"/api/v1/runs/{run_id}/token-shift")
    assert status.status_code == 200, status.text
    result: JSON = status.json()
    return result


async def set_answers(app: FastAPI, run_id: int, model: str, texts: list[str]) -> list[int]:
    """Give a model's answers of a run these texts, in item order (without token ids, so the
    lens tokenizes them); returns their generation ids."""
    async with app.state.playground.sessions() as session, session.begin():
        ids = list(
            await session.scalars(
                select(Generation.id)
                .join(RunItem, RunItem.id == Generation.run_item_id)
                .where(RunItem.run_id == run_id, Generation.model_name == model)
                .order_by(RunItem.position)
            )
        )
        assert len(ids) == len(texts)
        for generation_id, text in zip(ids, texts, strict=True):
            await session.execute(
                update(Generation)
                .where(Generation.id == generation_id)
                .values(text=text, tokens=None)
            )
    return ids


async def stored(app: FastAPI) -> dict[int, tuple[int, str]]:
    """Every stored analysis as generation id -> (analysis id, base model)."""
    async with app.state.playground.sessions() as session:
        rows = await session.execute(
            select(
                TokenShiftAnalysis.generation_id,
                TokenShiftAnalysis.id,
                TokenShiftAnalysis.base_model,
            )
        )
        return {gid: (aid, base) for gid, aid, base in rows.all()}


def scoring_requests(requests: list[JSON]) -> list[JSON]:
    """The token-shift scoring requests in a fake's request log."""
    return [
        r
        for r in requests
        if r["path"].endswith("/completions")
        and isinstance(r["body"], dict)
        and r["body"].get("prompt_logprobs")
    ]


def teach(server: FakeServer, texts: list[str]) -> None:
    """Let a fake's tokenizer see these texts: it decodes only ids it has made (a real server
    knows its whole vocabulary), and the answers here were tokenized by the chat server."""
    for text in texts:
        body = {"model": server.config.served_model_name, "prompt": text}
        assert httpx.post(f"{server.root_url}/tokenize", json=body).status_code == 200

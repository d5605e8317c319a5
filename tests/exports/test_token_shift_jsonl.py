"""The per-token token-shift export: one JSON object per analysed token, streamed in chunks."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pandas as pd
import sqlalchemy as sa
from fastapi import FastAPI

from app.comparisons.models import Conversation, Turn
from app.exports.token_shift import CHUNK_ANALYSES, FIELDS
from app.generation.records import Generation
from app.lens.models import TokenShiftAnalysis
from app.lens.shift import ShiftAnalysis, TokenShift
from playground_tools.fake_vllm import FakeServer

EXPORT_URL = "/api/v1/exports/token-shift.jsonl"
DOCUMENTED_FIELDS = [
    "conversation_id", "turn", "generation_id", "side", "model", "base_model", "position",
    "token", "token_id", "chat_logprob", "base_rank", "base_logprob", "base_top_token", "shift",
]  # fmt: skip
JSON = dict[str, Any]


def parse_lines(text: str) -> list[JSON]:
    """Each line on its own, as a JSONL reader would."""
    assert text == "" or text.endswith("\n")
    records = []
    for line in text.splitlines():
        record = json.loads(line)
        assert list(record) == DOCUMENTED_FIELDS
        records.append(record)
    return records


async def analysed_conversation(client: httpx.AsyncClient, prompt: str, **body: Any) -> JSON:
    """A comparison whose chat answer has been token-shifted; returns the conversation."""
    created = await client.post(
        "/api/v1/comparisons", json={"prompt": prompt, "params": {"temperature": 0}, **body}
    )
    assert created.status_code == 201, created.text
    conversation: JSON = created.json()
    turn = conversation["turns"][-1]
    chat = turn["a"] if turn["a"]["model_kind"] == "chat" else turn["b"]
    analysed = await client.post(f"/api/v1/generations/{chat['id']}/token-shift", json={})
    assert analysed.status_code == 201, analysed.text
    return conversation


async def test_every_analysed_token_is_one_line(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    assert FIELDS == DOCUMENTED_FIELDS
    chat_server.config.answer_words = 6
    first = await analysed_conversation(client, "Name a river.")
    awkward = '=cmd "quoted"\n\u00e9\U0001f642'
    chat_server.config.inject_text = awkward
    # The fake base decodes only tokens it has met (a real pair shares one vocabulary).
    met = httpx.post(f"{base_server.root_url}/tokenize", json={"prompt": awkward}, timeout=5)
    assert met.status_code == 200
    second = await analysed_conversation(client, "Name a town.", models=["chat", "base"])
    # An answer that was never analysed is not exported.
    await client.post("/api/v1/comparisons", json={"prompt": "Not analysed."})

    response = await client.get(EXPORT_URL)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/x-ndjson"
    assert response.headers["content-disposition"].startswith("attachment")
    assert '.jsonl"' in response.headers["content-disposition"]
    records = parse_lines(response.text)

    expected: list[JSON] = []
    for conversation, side in ((first, "b"), (second, "a")):
        generation = conversation["turns"][0][side]
        stored = (await client.get(f"/api/v1/generations/{generation['id']}/token-shift")).json()
        for token in stored["tokens"]:
            expected.append(
                {
                    "conversation_id": conversation["id"],
                    "turn": 1,
                    "generation_id": generation["id"],
                    "side": side,
                    "model": "chat",
                    "base_model": "base",
                    "position": token["position"],
                    "token": token["token"],
                    "token_id": token["token_id"],
                    "chat_logprob": token["chat_logprob"],
                    "base_rank": token["rank"],
                    "base_logprob": token["logprob"],
                    "base_top_token": token["base_top_token"],
                    "shift": token["shift"],
                }
            )
    assert records == expected
    # The injected answer's awkward text survives, one record per line all the same.
    assert (
        "".join(r["token"] for r in records if r["conversation_id"] == second["id"])
        == (second["turns"][0]["a"]["text"])
    )
    frame = pd.read_json(io.StringIO(response.text), lines=True)
    assert list(frame.columns) == DOCUMENTED_FIELDS and len(frame) == len(records)
    assert frame["base_rank"].tolist() == [r["base_rank"] for r in records]


async def test_empty_export(client: httpx.AsyncClient) -> None:
    response = await client.get(EXPORT_URL)
    assert response.status_code == 200 and response.text == ""


async def test_more_analyses_than_one_chunk_are_all_exported_in_order(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    # One and a half chunks of analyses, three tokens each, inserted directly for speed.
    count, start = CHUNK_ANALYSES + CHUNK_ANALYSES // 2, datetime(2025, 1, 1, tzinfo=UTC)
    rows: dict[str, list[JSON]] = {name: [] for name in ("c", "t", "g", "s")}
    for i in range(count):
        at = start + timedelta(seconds=i)
        cid = f"{i:032x}"
        rows["c"].append({
            "id": cid, "created_at": at, "updated_at": at, "title": f"c{i}", "base_format": "raw",
        })  # fmt: skip
        rows["t"].append({"id": i + 1, "conversation_id": cid, "number": 1,
                          "prompt": f"prompt {i}", "params": {}, "created_at": at})  # fmt: skip
        rows["g"].append({
            "id": i + 1, "turn_id": i + 1, "slot": "b", "is_current": True, "model_name": "chat",
            "model_kind": "chat", "served_model": "chat", "endpoint": "http://x/v1",
            "prompt_format": "chat", "params": {}, "status": "done", "text": "a b c",
            "created_at": at,
        })  # fmt: skip
        tokens = tuple(
            TokenShift(p, 100 + p, f" t{p}", p + 1 + i % 3, -1.0 - p, " top", 7, -0.1, -0.5)
            for p in range(3)
        )
        analysis = ShiftAnalysis("base", 4, 5, tokens, 0.01, 4)
        rows["s"].append({
            "generation_id": i + 1, "base_model": "base", "base_served_model": "tiny-base",
            "base_format": "raw", "context_text": f"prompt {i}", "total_tokens": 3,
            "shifted_ratio": analysis.shifted_ratio, "marginal_ratio": analysis.marginal_ratio,
            "analysis": analysis.to_json(), "elapsed_ms": 10.0, "requests": 4, "created_at": at,
        })  # fmt: skip
    tables = {"c": Conversation, "t": Turn, "g": Generation, "s": TokenShiftAnalysis}
    async with app.state.playground.sessions() as session, session.begin():
        for key, model in tables.items():
            await session.execute(sa.insert(model), rows[key])

    records = parse_lines((await client.get(EXPORT_URL)).text)
    assert len(records) == 3 * count
    assert [r["generation_id"] for r in records] == [i + 1 for i in range(count) for _ in range(3)]
    assert [r["position"] for r in records[:6]] == [0, 1, 2, 0, 1, 2]
    last = records[-1]
    i = count - 1
    assert (last["conversation_id"], last["base_rank"]) == (f"{i:032x}", 3 + 1 + i % 3 - 1)
    assert [r["shift"] for r in records[:3]] == ["unshifted", "marginal", "marginal"]

"""Where PostgreSQL differs from SQLite: time zones, NUL, column limits, cursors, test databases."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.exports import judged
from app.main import create_app
from app.migrate import alembic_config
from playground_tools.fake_vllm import FakeServer
from tests.conftest import (
    LeakedConnectionWarning,
    postgres_admin,
    postgres_database,
    postgres_server_url,
)

JSON = dict[str, Any]

on_postgres = pytest.mark.skipif(
    postgres_server_url() is None, reason="needs TEST_POSTGRES_URL (make test sets it)"
)


async def compare(client: httpx.AsyncClient, **body: Any) -> JSON:
    response = await client.post("/api/v1/comparisons", json=body)
    assert response.status_code == 201, response.text
    data: JSON = response.json()
    return data


async def vote(client: httpx.AsyncClient, conversation_id: str, **body: Any) -> JSON:
    response = await client.post(f"/api/v1/comparisons/{conversation_id}/votes", json=body)
    assert response.status_code == 201, response.text
    data: JSON = response.json()
    return data


async def export_rows(client: httpx.AsyncClient) -> list[dict[str, str]]:
    response = await client.get("/api/v1/exports/ratings.csv")
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


def short(*servers: FakeServer, words: int = 4) -> None:
    for server in servers:
        server.config.answer_words = words


def database_names(server: str) -> set[str]:
    with postgres_admin(server) as admin:
        return {row[0] for row in admin.execute("SELECT datname FROM pg_database")}


# ---------------------------------------------------------------- the test databases


@on_postgres
async def test_app_migrates_and_uses_the_test_database_on_postgres(
    client: httpx.AsyncClient, database_url: str, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    created = await compare(client, prompt="Where am I stored?")
    with postgres_admin(database_url) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        stored = conn.execute("SELECT id FROM conversations").fetchall()
    assert versions == [(ScriptDirectory.from_config(alembic_config()).get_current_head(),)]
    assert stored == [(created["id"],)]


@on_postgres
def test_each_test_database_is_new_and_dropped_even_with_connections_open() -> None:
    server = postgres_server_url()
    assert server is not None
    with (
        pytest.warns(LeakedConnectionWarning, match="1 connection"),
        postgres_database(server) as first,
        postgres_database(server) as second,
    ):
        names = {make_url(first).database, make_url(second).database}
        assert len(names) == 2
        assert names <= database_names(server)
        left_open = postgres_admin(first)
        with postgres_admin(first) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert tables.fetchone() == (0,)
    try:
        assert not names & database_names(server)
        assert left_open.closed or left_open.broken or _query_fails(left_open)
    finally:
        left_open.close()


def _query_fails(conn: Any) -> bool:
    try:
        conn.execute("SELECT 1")
    except Exception:
        return True
    return False


# ---------------------------------------------------------------- both backends


async def test_timestamps_read_back_are_utc(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    """The test server's time zone is not UTC; what the app reads back must still be UTC."""
    short(base_server, chat_server)
    before = datetime.now(UTC)
    created = await compare(client, prompt="What time is it?")
    await vote(client, created["id"], winner="a", rater="clock")
    after = datetime.now(UTC)
    stored = (await client.get(f"/api/v1/comparisons/{created['id']}")).json()
    turn = stored["turns"][0]
    stamps = {
        "conversation.created_at": stored["created_at"],
        "a.created_at": turn["a"]["created_at"],
        "a.finished_at": turn["a"]["finished_at"],
        "b.finished_at": turn["b"]["finished_at"],
        "vote.created_at": turn["votes"][0]["created_at"],
        "vote.updated_at": turn["votes"][0]["updated_at"],
    }
    (row,) = await export_rows(client)
    stamps["csv voted_at"] = row["voted_at"]
    for where, text in stamps.items():
        stamp = datetime.fromisoformat(text)
        assert stamp.utcoffset() == timedelta(0), f"{where} = {text} is not in UTC"
        assert before - timedelta(seconds=1) <= stamp <= after + timedelta(seconds=1), where
    assert datetime.fromisoformat(row["voted_at"]) == datetime.fromisoformat(
        stamps["vote.updated_at"]
    )


@pytest.mark.parametrize("path", ["/api/v1/comparisons/{id}", "/c/{id}"])
async def test_a_request_that_fails_gives_its_database_connection_back(
    client: httpx.AsyncClient, app: FastAPI, database_url: str, path: str
) -> None:
    """Otherwise it stays checked out (on PostgreSQL: idle in transaction, holding locks)."""
    engine = app.state.playground.engine
    ok = await client.get("/api/v1/models")
    assert ok.status_code == 200
    response = await client.get(path.format(id="0" * 32))
    assert response.status_code == 404
    assert engine.pool.checkedout() == 0, engine.pool.status()
    if database_url.startswith("postgresql"):
        with postgres_admin(database_url) as admin:
            states = admin.execute(
                "SELECT state FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        assert ("idle in transaction",) not in states


async def test_json_settings_round_trip_exactly(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    stop = ['"quoted"', "back\\slash", "ünï ✓", "\n\nUser:"]
    params = {"temperature": 0.3, "top_p": 0.875, "top_k": 7, "max_tokens": 5, "seed": 2**31 - 1}
    created = await compare(client, prompt="Round trip?", params={**params, "stop": stop})
    turn = created["turns"][0]
    assert turn["params"] == {**params, "stop": stop, "repetition_penalty": 1.0}
    sent_to_chat = chat_server.requests[-1]["body"]
    assert turn["b"]["params"]["stop"] == sent_to_chat["stop"]
    assert turn["b"]["messages"] == sent_to_chat["messages"]
    await vote(client, created["id"], winner="b", rater="json")
    (row,) = await export_rows(client)
    assert json.loads(row["stop"]) == stop
    assert float(row["top_p"]) == params["top_p"]
    assert int(row["seed"]) == params["seed"]


async def test_nul_in_a_model_answer_still_ends_the_generation_with_its_text(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    """PostgreSQL text cannot hold NUL; the answer must still be stored and finished."""
    short(base_server, chat_server)
    chat_server.config.inject_text = "before\x00after"
    created = await compare(client, prompt="Say something odd.")
    answer = created["turns"][0]["b"]
    assert answer["status"] == "done", answer
    assert answer["text"].startswith("before")
    assert "after" in answer["text"]
    # The conversation is not stuck: a follow-up is accepted.
    chat_server.config.inject_text = None
    response = await client.post(
        f"/api/v1/comparisons/{created['id']}/turns", json={"prompt": "Again."}
    )
    assert response.status_code == 201, response.text


async def test_nul_in_a_prompt_is_refused_or_kept_never_a_server_error(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    prompt = "one\x00two"
    response = await client.post("/api/v1/comparisons", json={"prompt": prompt})
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        assert response.json()["turns"][0]["prompt"].replace("\x00", "") == "onetwo"
    else:
        assert response.json()["detail"]


async def test_a_long_model_revision_from_the_models_file_is_stored(
    settings: Settings, base_server: FakeServer, chat_server: FakeServer
) -> None:
    """A revision the models file accepts must fit its column (PostgreSQL enforces VARCHAR(n))."""
    short(base_server, chat_server)
    revision = "refs/pr/" + "0123456789abcdef" * 12
    try:
        models = ModelsFile(
            models=[
                ModelConfig(
                    name="base", kind=ModelKind.BASE, url=base_server.base_url, model="tiny-base",
                    revision=revision,
                ),
                ModelConfig(
                    name="chat", kind=ModelKind.CHAT, url=chat_server.base_url, model="tiny-chat"
                ),
            ]
        )  # fmt: skip
    except ValidationError as exc:
        # Refusing it when the models file is read (a clear error at start) is fine too.
        assert "revision" in str(exc)
        return
    async with LifespanManager(create_app(settings, models)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post("/api/v1/comparisons", json={"prompt": "Which rev?"})
    assert response.status_code == 201, response.text
    assert response.json()["turns"][0]["a"]["model_revision"] == revision


async def test_ratings_export_streamed_in_many_small_chunks_keeps_order_and_history(
    client: httpx.AsyncClient,
    base_server: FakeServer,
    chat_server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunk of 2 rows makes the export fetch from its (server-side) cursor several times."""
    short(base_server, chat_server)
    monkeypatch.setattr(judged, "CHUNK_ROWS", 2)
    first = await compare(client, prompt="Turn one.")
    conversation_id = first["id"]
    expected: list[tuple[str, int, str]] = []
    for number in (1, 2, 3):
        if number > 1:
            response = await client.post(
                f"/api/v1/comparisons/{conversation_id}/turns", json={"prompt": f"Turn {number}."}
            )
            assert response.status_code == 201, response.text
        for rater in ("ann", "bob"):
            stored = await vote(client, conversation_id, winner="a", rater=rater)
            expected.append((conversation_id, number, rater))
            assert stored["turn"] == number
    other = await compare(client, prompt="Another conversation.")
    await vote(client, other["id"], winner="tie", rater="cy")
    expected.append((other["id"], 1, "cy"))

    rows = await export_rows(client)
    assert [(r["conversation_id"], int(r["turn"]), r["rater"]) for r in rows] == expected
    turns = (await client.get(f"/api/v1/comparisons/{conversation_id}")).json()["turns"]
    for row in rows[:6]:
        earlier = turns[: int(row["turn"]) - 1]
        assert json.loads(row["history_json"]) == [
            {"prompt": t["prompt"], "response_a": t["a"]["text"], "response_b": t["b"]["text"]}
            for t in earlier
        ]
    assert json.loads(rows[-1]["history_json"]) == []

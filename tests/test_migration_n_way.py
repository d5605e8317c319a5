"""Nothing lost in the move to N-way comparisons (migration 0003).

tests/data/legacy_0002 holds a database that the two-model playground (schema 0002) filled
through its own JSON API, and the ratings CSV it exported then (see make.py there). Upgrading
a copy must keep every conversation, generation, vote, analysis and continuation: the new
export's rows carry the old columns byte for byte, and the old URLs open as before.
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.main import create_app
from app.migrate import alembic_config
from tests.conftest import DEAD_URL, postgres_database, postgres_server_url

LEGACY = Path(__file__).parent / "data" / "legacy_0002"
OLD_CSV = (LEGACY / "ratings.csv").read_bytes()
NEW_COLUMNS = ["judgement_id", "slot_a", "slot_b", "position_a", "position_b", "blind",
               "n_models"]  # fmt: skip
LEGACY_TABLES = ["conversations", "turns", "generations", "votes", "token_shift_analyses"]


def legacy_models() -> ModelsFile:
    """The models the legacy database names (their servers are not needed to read it)."""
    return ModelsFile(
        models=[
            ModelConfig(name="base", kind=ModelKind.BASE, url=DEAD_URL, model="tiny-base"),
            ModelConfig(name="chat", kind=ModelKind.CHAT, url=DEAD_URL, model="tiny-chat"),
        ]
    )


def copy_to_postgres(url: str) -> None:
    """The legacy rows, copied into a PostgreSQL database migrated to revision 0002."""
    from alembic import command

    config = alembic_config()
    config.attributes["database_url"] = url
    command.upgrade(config, "0002")
    source = sa.create_engine(f"sqlite:///{LEGACY / 'legacy.db'}")
    target = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        metadata = sa.MetaData()
        metadata.reflect(target, only=LEGACY_TABLES)
        with source.connect() as read, target.begin() as write:
            for name in LEGACY_TABLES:
                table = metadata.tables[name]
                rows = [dict(r._mapping) for r in read.execute(sa.text(f"SELECT * FROM {name}"))]
                write.execute(table.insert(), _decoded(rows, table))
                if "id" in table.columns and name != "conversations":
                    write.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"(SELECT MAX(id) FROM {name}))"
                        )
                    )
    finally:
        source.dispose()
        target.dispose()


def _decoded(rows: list[dict[str, Any]], table: sa.Table) -> list[dict[str, Any]]:
    """SQLite keeps JSON and times as text and booleans as 0/1: give PostgreSQL the values."""
    import json

    out = []
    for row in rows:
        fixed = dict(row)
        for column in table.columns:
            value = fixed.get(column.name)
            if isinstance(column.type, sa.JSON) and isinstance(value, str):
                fixed[column.name] = json.loads(value)
            elif isinstance(column.type, sa.Boolean) and isinstance(value, int):
                fixed[column.name] = bool(value)
            elif isinstance(column.type, sa.DateTime) and isinstance(value, str):
                # SQLite kept UTC without a zone; PostgreSQL would read it in its own zone.
                fixed[column.name] = datetime.fromisoformat(value).replace(tzinfo=UTC)
        out.append(fixed)
    return out


@pytest.fixture
async def upgraded(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app started on a copy of the legacy database (upgraded on start)."""
    server = postgres_server_url()
    if server is None:
        database = tmp_path / "legacy.db"
        shutil.copy(LEGACY / "legacy.db", database)
        async with _client(f"sqlite:///{database}", tmp_path) as client:
            yield client
        return
    with postgres_database(server) as url:
        # Alembic's env runs its own event loop: give it a thread without one.
        await asyncio.to_thread(copy_to_postgres, url)
        async with _client(url, tmp_path) as client:
            yield client


from contextlib import asynccontextmanager  # noqa: E402


@asynccontextmanager
async def _client(url: str, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(DATABASE_URL=url, data_dir=data_dir, secret_key="s" * 40)
    async with LifespanManager(create_app(settings, legacy_models())) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def written(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


async def test_the_export_after_the_upgrade_has_the_old_rows_byte_for_byte(
    upgraded: httpx.AsyncClient,
) -> None:
    response = await upgraded.get("/api/v1/exports/ratings.csv")
    assert response.status_code == 200
    old, new = rows_of(OLD_CSV), rows_of(response.content)
    width = len(old[0])
    assert new[0] == old[0] + NEW_COLUMNS
    assert len(new) == len(old) == 7  # the header and six votes
    # The old columns, written back out, are the very bytes the old version exported.
    assert written([row[:width] for row in new]) == OLD_CSV
    for row in new[1:]:
        extra = dict(zip(NEW_COLUMNS, row[width:], strict=True))
        assert extra == {"judgement_id": row[0], "slot_a": "a", "slot_b": "b",
                         "position_a": "0", "position_b": "1", "blind": "false",
                         "n_models": "2"}  # fmt: skip


async def test_old_conversations_open_as_before(upgraded: httpx.AsyncClient) -> None:
    old = rows_of(OLD_CSV)[1:]
    for conversation_id in {row[3] for row in old}:
        page = await upgraded.get(f"/c/{conversation_id}")
        assert page.status_code == 200
        api = (await upgraded.get(f"/api/v1/comparisons/{conversation_id}")).json()
        assert (api["model_a"], api["model_b"]) in {("base", "chat"), ("chat", "base")}
        assert [m["slot"] for m in api["models"]] == ["a", "b"]
        for row in (r for r in old if r[3] == conversation_id):
            vote = next(v for t in api["turns"] for v in t["votes"] if v["id"] == int(row[0]))
            assert (vote["rater"], vote["winner"]) == (row[2], row[16])
            assert vote["score_a"] == (int(row[18]) if row[18] else None)
            assert vote["score_b"] == (int(row[19]) if row[19] else None)
            turn = next(t for t in api["turns"] if t["number"] == int(row[4]))
            shown = (vote["generation_a_id"], vote["generation_b_id"]) == (
                turn["a"]["id"],
                turn["b"]["id"],
            )
            # As before, a page lists the votes on the answers it shows (not on replaced ones).
            assert (f'data-rater="{row[2]}"' in page.text) == shown
    history = await upgraded.get("/history")
    assert history.status_code == 200
    assert history.text.count('href="/c/') == 4


async def test_analyses_continuations_and_regenerations_survive(
    upgraded: httpx.AsyncClient,
) -> None:
    old = rows_of(OLD_CSV)[1:]
    first = next(r for r in old if r[2] == "alice")[3]
    api = (await upgraded.get(f"/api/v1/comparisons/{first}")).json()
    turn = api["turns"][0]
    assert turn["b"]["shifted_ratio"] is not None
    assert [c["slot"] for c in turn["continuations"]] == ["p"]
    assert turn["continuations"][0]["prefix_of_id"] == turn["b"]["id"]
    lens = await upgraded.get(f"/api/v1/generations/{turn['b']['id']}/token-shift")
    assert lens.status_code == 200
    # erin judged the first A; frank the regenerated one: each keeps its own.
    third = next(r for r in old if r[2] == "erin")[3]
    votes = (await upgraded.get(f"/api/v1/comparisons/{third}")).json()["turns"][0]["votes"]
    by_rater = {v["rater"]: v for v in votes}
    assert by_rater["erin"]["generation_a_id"] != by_rater["frank"]["generation_a_id"]
    assert by_rater["erin"]["generation_b_id"] == by_rater["frank"]["generation_b_id"]
    # New judgements continue after the copied ids.
    follow = await upgraded.post(
        f"/api/v1/comparisons/{third}/votes", json={"winner": "tie", "rater": "gina"}
    )
    assert follow.status_code == 201, follow.text
    assert follow.json()["id"] > max(int(r[0]) for r in old)

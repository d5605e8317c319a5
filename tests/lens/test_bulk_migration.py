"""Migration 0008 (run token-shift jobs and failures): up and down, rows kept, cascades."""

from __future__ import annotations

import sqlalchemy as sa

from app.db import Base, utcnow
from tests.test_migrations import (  # noqa: F401  (fixtures)
    alembic,
    current_revision,
    database_url,
    differences,
    engine,
    head_revision,
)

NEW = {"run_shift_jobs", "run_shift_failures"}


def _run_with_answer(connection: sa.Connection) -> tuple[int, int]:
    """A run of one item with one chat answer: (run id, generation id)."""
    tables = Base.metadata.tables
    set_id = connection.execute(
        tables["prompt_sets"].insert().returning(tables["prompt_sets"].c.id),
        {"name": "s", "created_at": utcnow()},
    ).scalar_one()
    item_id = connection.execute(
        tables["prompt_items"].insert().returning(tables["prompt_items"].c.id),
        {"prompt_set_id": set_id, "position": 0, "key": "k", "prompt": "p", "tags": []},
    ).scalar_one()
    run_id = connection.execute(
        tables["runs"].insert().returning(tables["runs"].c.id),
        {"prompt_set_id": set_id, "models": ["base", "chat"], "params": {},
         "base_format": "raw", "blind": False, "status": "done", "created_at": utcnow()},
    ).scalar_one()  # fmt: skip
    run_item_id = connection.execute(
        tables["run_items"].insert().returning(tables["run_items"].c.id),
        {"run_id": run_id, "prompt_item_id": item_id, "position": 0},
    ).scalar_one()
    generation_id = connection.execute(
        tables["generations"].insert().returning(tables["generations"].c.id),
        {"slot": "b", "is_current": True, "model_name": "chat", "model_kind": "chat",
         "served_model": "c", "endpoint": "e", "prompt_format": "chat", "params": {},
         "status": "done", "text": "x", "created_at": utcnow(), "run_item_id": run_item_id},
    ).scalar_one()  # fmt: skip
    return run_id, generation_id


def test_0008_up_and_down(database_url: str, engine: sa.Engine) -> None:  # noqa: F811
    alembic(database_url, "upgrade", "0005")
    assert not NEW & set(sa.inspect(engine).get_table_names())
    with engine.begin() as connection:
        run_id, generation_id = _run_with_answer(connection)
    alembic(database_url, "upgrade", "head")
    assert current_revision(engine) == head_revision()
    assert differences(engine) == []
    tables = Base.metadata.tables
    jobs, failures = tables["run_shift_jobs"], tables["run_shift_failures"]
    with engine.begin() as connection:
        job_id = connection.execute(
            jobs.insert().returning(jobs.c.id),
            {"run_id": run_id, "top_k": 5, "status": "done", "created_at": utcnow()},
        ).scalar_one()
        connection.execute(
            failures.insert(),
            {"job_id": job_id, "generation_id": generation_id, "base_model": "base",
             "error": "down", "created_at": utcnow()},
        )  # fmt: skip
    # One failure per answer and job.
    try:
        with engine.begin() as connection:
            connection.execute(
                failures.insert(),
                {"job_id": job_id, "generation_id": generation_id, "base_model": "base",
                 "error": "again", "created_at": utcnow()},
            )  # fmt: skip
        raise AssertionError("a second failure of the same answer was stored")
    except sa.exc.IntegrityError:
        pass
    alembic(database_url, "downgrade", "0005")
    assert not NEW & set(sa.inspect(engine).get_table_names())
    with engine.connect() as connection:
        kept = connection.execute(sa.text("SELECT text FROM generations")).scalars().all()
    assert kept == ["x"]
    alembic(database_url, "upgrade", "head")
    assert differences(engine) == []

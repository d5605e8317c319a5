"""How long does the leaderboard take? Count pairs in SQLite and fit with the bootstrap.

Fills a fresh SQLite database with N two-answer blind judgements between M models (outcomes
drawn from known strengths, 10% ties, 5% both bad) by bulk inserts, then times the SQL count
of the pairs and the Bradley-Terry fit with 200 bootstrap rounds, separately.

    .venv/bin/python bench/leaderboard_fit.py --pairs 100000 --models 6
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.comparisons.models import (  # noqa: E402
    Conversation,
    Judgement,
    JudgementEntry,
    Participant,
    Turn,
)
from app.db import create_engine, create_sessionmaker  # noqa: E402
from app.generation.records import Generation  # noqa: E402
from app.leaderboard.filters import Filters  # noqa: E402
from app.leaderboard.fit import fit  # noqa: E402
from app.leaderboard.pairs import count_pairs  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402

AT = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 5000


def rows_for(i: int, a: str, b: str, ranks: tuple[int | None, int | None]) -> dict[str, Any]:
    """One conversation, turn, two generations, judgement and entries."""
    cid = f"{i:032x}"
    gens = [
        {"id": 2 * i + n + 1, "turn_id": i + 1, "slot": s, "model_name": m, "model_kind": "chat",
         "served_model": m, "endpoint": "x", "prompt_format": "chat", "params": {},
         "status": "done", "text": "t", "created_at": AT}
        for n, (s, m) in enumerate((("a", a), ("b", b)))
    ]  # fmt: skip
    return {
        "c": {"id": cid, "created_at": AT, "updated_at": AT, "title": "t", "base_format": "raw",
              "blind": True},
        "p": [{"conversation_id": cid, "slot": s, "position": n, "model_name": m,
               "model_kind": "chat"} for n, (s, m) in enumerate((("a", a), ("b", b)))],
        "t": {"id": i + 1, "conversation_id": cid, "number": 1, "prompt": "p", "params": {},
              "created_at": AT},
        "g": gens,
        "j": {"id": i + 1, "turn_id": i + 1, "rater": "r", "all_bad": ranks[0] is None,
              "blind": True, "created_at": AT, "updated_at": AT},
        "e": [{"judgement_id": i + 1, "slot": s, "generation_id": 2 * i + n + 1, "position": n,
               "rank": ranks[n]} for n, s in enumerate("ab")],
    }  # fmt: skip


async def fill(url: str, pairs: int, models: int, seed: int) -> None:
    """Migrate and insert the judgements in batches."""
    engine = create_engine(url)
    await upgrade_to_head(engine)
    rng = np.random.default_rng(seed)
    strengths = np.linspace(1, -1, models)
    tables = {"c": Conversation, "p": Participant, "t": Turn, "g": Generation, "j": Judgement,
              "e": JudgementEntry}  # fmt: skip
    sessions = create_sessionmaker(engine)
    for start in range(0, pairs, BATCH):
        batch: dict[str, list[dict[str, Any]]] = {k: [] for k in tables}
        for i in range(start, min(start + BATCH, pairs)):
            x, y = rng.choice(models, size=2, replace=False)
            roll = rng.random()
            p_x = 1 / (1 + np.exp(strengths[y] - strengths[x]))
            ranks: tuple[int | None, int | None]
            if roll < 0.05:
                ranks = (None, None)
            elif roll < 0.15:
                ranks = (1, 1)
            else:
                ranks = (1, 2) if rng.random() < p_x else (2, 1)
            for key, value in rows_for(i, f"model-{x}", f"model-{y}", ranks).items():
                batch[key] += value if isinstance(value, list) else [value]
        async with sessions() as session, session.begin():
            for key, model in tables.items():
                await session.execute(sa.insert(model), batch[key])
    await engine.dispose()


async def measure(url: str) -> None:
    """Time the count and the fit."""
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    started = time.perf_counter()
    async with sessions() as session:
        counts = await count_pairs(session, Filters())
    counted = time.perf_counter()
    board = fit(counts)
    fitted = time.perf_counter()
    await engine.dispose()
    print(f"pairs: {board.pairs}, categories: {len(counts)}, models: {len(board.models)}")
    print(f"SQL count of the pairs: {counted - started:.2f} s")
    print(f"fit + 200 bootstrap rounds: {fitted - counted:.2f} s")
    for m in board.models:
        print(f"  {m.rank:2d} {m.name:10s} {m.rating:7.1f} [{m.ci_low:7.1f}, {m.ci_high:7.1f}]")


def main() -> None:
    """Parse arguments, fill a temporary database, measure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        asyncio.run(fill(url, args.pairs, args.models, args.seed))
        print(f"filled {args.pairs} judgements in {time.perf_counter() - started:.1f} s")
        asyncio.run(measure(url))


if __name__ == "__main__":
    main()

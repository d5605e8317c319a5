"""Insert items (a turn and its answers) judged by several raters straight into the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from app.comparisons.models import Conversation, Judgement, JudgementEntry, Participant, Turn
from app.generation.records import Generation

START = datetime(2025, 1, 1, tzinfo=UTC)
PARAMS = {"temperature": 0.7, "max_tokens": 8}


@dataclass
class Rating:
    """One rater's ranks for the item's answers (None for all bad), when and whether blind."""

    ranks: Sequence[int | None]
    at: datetime = START
    blind: bool = True
    # Judged after slot a's answer was regenerated: a different answer, so a different item.
    regenerated: bool = False


@dataclass
class Item:
    """One turn answered by len(models) models, and the raters who judged it."""

    models: Sequence[str]
    ratings: Mapping[str, Rating]


def ranks(
    *values: int | None, at: float = 0, blind: bool = True, regenerated: bool = False
) -> Rating:
    """A rating `at` seconds after START."""
    return Rating(values, START + timedelta(seconds=at), blind, regenerated)


async def insert(app: FastAPI, items: Sequence[Item]) -> None:
    """One conversation per item; one judgement per rater of its only turn."""
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("c", "p", "t", "g", "j", "e")}
    generation_id = judgement_id = 0
    for i, item in enumerate(items, start=1):
        cid = f"{i:032x}"
        rows["c"].append({"id": cid, "created_at": START, "updated_at": START, "title": f"c{i}",
                          "base_format": "raw", "blind": True})  # fmt: skip
        slots = "abcd"[: len(item.models)]
        rows["p"] += [
            {"conversation_id": cid, "slot": s, "position": n, "model_name": m,
             "model_kind": "chat"}
            for n, (s, m) in enumerate(zip(slots, item.models, strict=True))
        ]  # fmt: skip
        rows["t"].append({"id": i, "conversation_id": cid, "number": 1, "prompt": "p",
                          "params": PARAMS, "created_at": START})  # fmt: skip
        first = generation_id + 1
        for s, model in zip(slots, item.models, strict=True):
            generation_id += 1
            rows["g"].append({
                "id": generation_id, "turn_id": i, "slot": s, "is_current": True,
                "model_name": model, "model_kind": "chat", "served_model": model,
                "endpoint": "http://x/v1/chat/completions", "prompt_format": "chat",
                "messages": [], "params": PARAMS, "status": "done", "text": f"{model} {i}",
                "created_at": START, "finished_at": START,
            })  # fmt: skip
        for rater, rating in item.ratings.items():
            judged = [first + n for n in range(len(slots))]
            if rating.regenerated:
                generation_id += 1
                rows["g"].append({**rows["g"][first - 1], "id": generation_id})
                judged[0] = generation_id
            judgement_id += 1
            rows["j"].append({"id": judgement_id, "turn_id": i, "rater": rater,
                              "all_bad": all(r is None for r in rating.ranks),
                              "blind": rating.blind, "created_at": rating.at,
                              "updated_at": rating.at})  # fmt: skip
            rows["e"] += [
                {"judgement_id": judgement_id, "slot": s, "generation_id": g, "position": n,
                 "rank": rank}
                for n, (s, g, rank) in enumerate(zip(slots, judged, rating.ranks, strict=True))
            ]  # fmt: skip
    tables = {"c": Conversation, "p": Participant, "t": Turn, "g": Generation, "j": Judgement,
              "e": JudgementEntry}  # fmt: skip
    async with app.state.playground.sessions() as session, session.begin():
        for key, table in tables.items():
            if rows[key]:
                await session.execute(sa.insert(table), rows[key])

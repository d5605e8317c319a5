"""Insert judgements straight into the database (fast): one conversation and turn each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from app.comparisons.models import Conversation, Judgement, JudgementEntry, Participant, Turn
from app.generation.records import Generation

START = datetime(2025, 1, 1, tzinfo=UTC)
PARAMS = {"temperature": 0.7, "top_p": 0.95, "top_k": -1, "max_tokens": 8, "seed": 7,
          "stop": [], "repetition_penalty": 1.0}  # fmt: skip


@dataclass
class Vote:
    """Models (slots a, b, ...) and their ranks (None for all bad)."""

    models: Sequence[str]
    ranks: Sequence[int | None]
    blind: bool = True
    rater: str = "r"
    at: datetime = START
    system: str | None = None
    # Earlier turns of the same conversation: (prompt, answer per slot).
    history: list[tuple[str, list[str]]] = field(default_factory=list)
    prompt: str = "prompt"
    seed: int | None = 7


async def insert(app: FastAPI, votes: Sequence[Vote]) -> None:
    """One conversation per vote; its judged turn comes after the vote's history turns."""
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("c", "p", "t", "g", "j", "e")}
    turn_id = generation_id = 0
    for i, vote in enumerate(votes):
        cid = f"{i:032x}"
        at = vote.at
        rows["c"].append({"id": cid, "created_at": START + timedelta(seconds=i), "updated_at": at,
                          "title": f"c{i}", "base_format": "raw", "system_prompt": vote.system,
                          "blind": vote.blind})  # fmt: skip
        slots = "abcd"[: len(vote.models)]
        rows["p"] += [
            {
                "conversation_id": cid,
                "slot": s,
                "position": n,
                "model_name": m,
                "model_kind": "chat",
            }
            for n, (s, m) in enumerate(zip(slots, vote.models, strict=True))
        ]
        turns = [*vote.history, (vote.prompt, [f"answer {m} {i}" for m in vote.models])]
        for number, (prompt, answers) in enumerate(turns, start=1):
            turn_id += 1
            rows["t"].append({"id": turn_id, "conversation_id": cid, "number": number,
                              "prompt": prompt, "params": PARAMS, "created_at": at})  # fmt: skip
            first_generation = generation_id + 1
            for s, model, text in zip(slots, vote.models, answers, strict=True):
                generation_id += 1
                rows["g"].append({
                    "id": generation_id, "turn_id": turn_id, "slot": s, "is_current": True,
                    "model_name": model, "model_kind": "chat", "served_model": model,
                    "endpoint": "http://x/v1/chat/completions", "prompt_format": "chat",
                    "messages": [], "params": PARAMS, "seed": vote.seed, "status": "done",
                    "text": text, "finish_reason": "stop", "completion_tokens": 3,
                    "created_at": at,
                })  # fmt: skip
        rows["j"].append({"id": i + 1, "turn_id": turn_id, "rater": vote.rater,
                          "all_bad": all(r is None for r in vote.ranks), "blind": vote.blind,
                          "created_at": at, "updated_at": at})  # fmt: skip
        rows["e"] += [
            {"judgement_id": i + 1, "slot": s, "generation_id": first_generation + n,
             "position": n, "rank": rank}
            for n, (s, rank) in enumerate(zip(slots, vote.ranks, strict=True))
        ]  # fmt: skip
    tables = {"c": Conversation, "p": Participant, "t": Turn, "g": Generation, "j": Judgement,
              "e": JudgementEntry}  # fmt: skip
    async with app.state.playground.sessions() as session, session.begin():
        for key, model in tables.items():
            if rows[key]:
                await session.execute(sa.insert(model), rows[key])

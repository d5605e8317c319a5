"""A run's token-shift analyses as streamed CSV (one row per answer) and JSONL (with each
position's class and shifted flag), read a batch at a time in short sessions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.lens.runs.queries import AnalysedAnswer, analysed_answers
from app.lens.shift import Shift
from app.runs.models import Run
from app.spreadsheet import neutralise

BATCH = 200
CSV_HEADER = [
    "run", "item", "run_item_id", "generation_id", "model", "base_model", "tokens",
    "unshifted", "marginal", "shifted", "shifted_ratio", "marginal_ratio",
    "first_shifted_position",
]  # fmt: skip


async def batches(
    sessions: async_sessionmaker[AsyncSession], run: Run
) -> AsyncIterator[list[AnalysedAnswer]]:
    """The run's analysed answers, a batch at a time, each batch read in its own session."""
    offset = 0
    while True:
        async with sessions() as session:
            rows = await analysed_answers(session, run, offset, BATCH)
        if not rows:
            return
        yield rows
        offset += len(rows)


def summary(answer: AnalysedAnswer) -> dict[str, Any]:
    """An analysed answer's counts and ratios, recomputed from its tokens."""
    classes = [str(t["shift"]) for t in answer.analysis.get("tokens") or []]
    total = len(classes)
    counts = {shift.value: classes.count(shift.value) for shift in Shift}
    first = next((i for i, c in enumerate(classes) if c == Shift.SHIFTED), None)
    return {
        "run": None,
        "item": answer.item,
        "run_item_id": answer.run_item_id,
        "generation_id": answer.generation_id,
        "model": answer.model,
        "base_model": answer.base,
        "tokens": total,
        "counts": counts,
        "shifted_ratio": counts[Shift.SHIFTED] / total if total else 0.0,
        "marginal_ratio": counts[Shift.MARGINAL] / total if total else 0.0,
        "first_shifted_position": first,
        "classes": classes,
    }


async def csv_lines(sessions: async_sessionmaker[AsyncSession], run: Run) -> AsyncIterator[str]:
    """A header, then one neutralised row per analysed answer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    async for rows in batches(sessions, run):
        for answer in rows:
            s = summary(answer)
            counts = s["counts"]
            cells: list[Any] = [
                run.id, s["item"], s["run_item_id"], s["generation_id"], s["model"],
                s["base_model"], s["tokens"], counts[Shift.UNSHIFTED], counts[Shift.MARGINAL],
                counts[Shift.SHIFTED], f"{s['shifted_ratio']:.6f}", f"{s['marginal_ratio']:.6f}",
                "" if s["first_shifted_position"] is None else s["first_shifted_position"],
            ]  # fmt: skip
            writer.writerow([neutralise(str(c)) for c in cells])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


async def jsonl_lines(sessions: async_sessionmaker[AsyncSession], run: Run) -> AsyncIterator[str]:
    """One JSON object per analysed answer: its counts, and per position its token, base rank,
    class and whether it is shifted."""
    async for rows in batches(sessions, run):
        lines = []
        for answer in rows:
            record = summary(answer) | {"run": run.id}
            tokens = answer.analysis.get("tokens") or []
            record["token_texts"] = [t["token"] for t in tokens]
            record["ranks"] = [t["rank"] for t in tokens]
            record["shifted"] = [c == Shift.SHIFTED for c in record["classes"]]
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        yield "".join(lines)

"""Run results as streamed CSV (answers side by side) and JSONL (with full provenance), each
answer marked right or wrong against its item's reference."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.generation.records import Generation
from app.runs import queries
from app.runs.models import Run
from app.spreadsheet import neutralise
from app.web.state import MarksLookup

BATCH = 200


async def _batches(
    sessions: async_sessionmaker[AsyncSession], run: Run, marks_of: MarksLookup
) -> AsyncIterator[tuple[list[queries.ResultRow], dict[int, bool]]]:
    """The run's rows, a batch at a time, each batch read in its own short session, with
    whether each answer matches its item's reference (by generation id; see app.forgetting)."""
    offset = 0
    while True:
        async with sessions() as session:
            rows = await queries.results(session, run, offset=offset, limit=BATCH)
            marks = await marks_of(session, rows)
        if not rows:
            return
        yield rows, marks
        offset += len(rows)


def _correct(marks: dict[int, bool], answer: Generation | None) -> bool | None:
    """Right, wrong, or None (no reference, or no finished answer)."""
    return None if answer is None else marks.get(answer.id)


async def csv_lines(
    sessions: async_sessionmaker[AsyncSession], run: Run, marks_of: MarksLookup
) -> AsyncIterator[str]:
    """A header, then one line per item: prompt, reference, and each model's answer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["item", "prompt", "tags", "reference"]
    for name in run.models:
        header += [
            f"{name} status", f"{name} answer", f"{name} completion_tokens", f"{name} correct"
        ]  # fmt: skip
    writer.writerow(header)
    async for rows, marks in _batches(sessions, run, marks_of):
        for row in rows:
            item = row.item
            cells: list[Any] = [
                item.key,
                item.prompt,
                ";".join(item.tags or []),
                json.dumps(item.reference) if item.reference else "",
            ]
            for answer in row.answers:
                correct = _correct(marks, answer)
                mark = "" if correct is None else int(correct)
                if answer is None:
                    cells += ["pending", "", "", mark]
                else:
                    tokens = answer.completion_tokens
                    cells += [answer.status, answer.text, "" if tokens is None else tokens, mark]
            writer.writerow([neutralise(str(c)) for c in cells])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def provenance(answer: Generation) -> dict[str, Any]:
    """Everything needed to reproduce an answer, as the playground records it."""
    return {
        "generation_id": answer.id,
        "model": answer.model_name,
        "kind": answer.model_kind,
        "served_model": answer.served_model,
        "revision": answer.model_revision,
        "endpoint": answer.endpoint,
        "prompt_format": answer.prompt_format,
        "prompt_text": answer.prompt_text,
        "messages": answer.messages,
        "params": answer.params,
        "seed": answer.seed,
        "status": answer.status,
        "text": answer.text,
        "finish_reason": answer.finish_reason,
        "error": answer.error,
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "ttft_ms": answer.ttft_ms,
        "total_ms": answer.total_ms,
    }


async def jsonl_lines(
    sessions: async_sessionmaker[AsyncSession], run: Run, marks_of: MarksLookup
) -> AsyncIterator[str]:
    """One JSON object per item, with each model's answer and its provenance."""
    async for rows, marks in _batches(sessions, run, marks_of):
        lines = []
        for row in rows:
            record = {
                "run": run.id,
                "item": row.item.key,
                "prompt": row.item.prompt,
                "system": row.item.system,
                "tags": row.item.tags,
                "reference": row.item.reference,
                "answers": [
                    None if a is None else provenance(a) | {"correct": _correct(marks, a)}
                    for a in row.answers
                ],
            }
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        yield "".join(lines)

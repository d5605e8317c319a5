"""Does the ratings CSV export stream in flat memory? Export N and N/10 votes and compare.

Fills two fresh SQLite databases (N/10 and N votes, ~300-character texts, a few turns per
conversation) with bulk inserts, then streams each export through `stream_ratings_csv` into
/dev/null in a fresh child process, sampling its resident memory. Prints rows/s and the peak
memory growth of each export, and their ratio: about 1 when memory stays flat.

    .venv/bin/python bench/export_memory.py --rows 200000
    .venv/bin/python bench/export_memory.py --rows 1000000 --tracemalloc   # Python heap too
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.comparisons.models import (  # noqa: E402
    Conversation,
    Judgement,
    JudgementEntry,
    Participant,
    Turn,
)
from app.config import to_async_url  # noqa: E402
from app.db import create_engine, create_sessionmaker  # noqa: E402
from app.exports.ratings import stream_ratings_csv  # noqa: E402
from app.generation.records import Generation  # noqa: E402
from app.migrate import alembic_config  # noqa: E402

BATCH_VOTES = 5000
TEXT_POOL = 512
WORDS = [
    "the", "river", "town", "people", "market", "morning", "old", "small", "quiet", "road",
    "house", "garden", "water", "light", "winter", "summer", "children", "walked", "found",
    "made", "kept", "saw", "said", "near", "over", "under", "along", "through", "with", "and",
    "but", "then", "often", "slowly", "always", "every", "day", "year", "bread", "stone",
    "bridge", "field", "window", "letter", "story", "long", "green", "warm", "bright", "north",
    "south", "hill", "farm", "school", "evening", "friend", "work",
]  # fmt: skip
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


# ---------------------------------------------------------------- filling a database


def text_pool(seed: int = 0) -> list[str]:
    """Sentences of 250-350 characters (no newlines, so CSV records can be counted by CRLF)."""
    rng = random.Random(seed)
    pool = []
    for _ in range(TEXT_POOL):
        target = rng.randint(250, 350)
        words: list[str] = []
        length = 0
        while length < target:
            words.append(rng.choice(WORDS))
            length += len(words[-1]) + 1
        pool.append((" ".join(words).capitalize() + ".")[:target])
    return pool


def migrate(url: str) -> None:
    """Create the schema with the app's own migrations."""
    config = alembic_config()
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


TABLES = (Conversation, Participant, Turn, Generation, Judgement, JudgementEntry)


def raw_table(model: type[Any]) -> sa.TableClause:
    """The model's table without column types: values go to the driver as they are (fast)."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return sa.table(table.name, *(sa.column(c.name) for c in table.columns))


def stored_time(at: datetime) -> str:
    """A UTC timestamp as SQLAlchemy stores DATETIME in SQLite."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def fill(url: str, votes: int, turns_per_conversation: int) -> float:
    """Insert `votes` judged turns (two answers each: one judgement with two entries, i.e.
    one rated pair) in batches; return seconds."""
    pool = text_pool()
    engine = sa.create_engine(url)
    tables = [raw_table(m) for m in TABLES]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    params = json.dumps({"temperature": 0.7, "top_p": 0.95, "top_k": -1, "max_tokens": 256,
                         "seed": 1234, "stop": [], "repetition_penalty": 1.0})  # fmt: skip
    began = time.perf_counter()
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA synchronous=OFF")
        for first in range(0, votes, BATCH_VOTES):
            rows: list[list[dict[str, Any]]] = [[] for _ in TABLES]
            for i in range(first, min(first + BATCH_VOTES, votes)):
                number = i % turns_per_conversation + 1
                cid = f"{i // turns_per_conversation:032x}"
                at = stored_time(start + timedelta(seconds=i))
                prompt, answer_a, answer_b = (pool[(i * k) % TEXT_POOL] for k in (1, 7, 13))
                if number == 1:
                    rows[0].append({
                        "id": cid, "created_at": at, "updated_at": at, "title": prompt[:80],
                        "system_prompt": None, "base_format": "raw", "blind": 0,
                    })  # fmt: skip
                    conversation_number = i // turns_per_conversation
                    for position, kind in enumerate(("base", "chat")):
                        rows[1].append({
                            "id": 2 * conversation_number + position + 1, "conversation_id": cid,
                            "slot": "ab"[position], "position": position, "model_name": kind,
                            "model_kind": kind,
                        })  # fmt: skip
                turn_id, gen_a, gen_b = i + 1, 2 * i + 1, 2 * i + 2
                rows[2].append({"id": turn_id, "conversation_id": cid, "number": number,
                                "prompt": prompt, "params": params, "created_at": at})  # fmt: skip
                messages = json.dumps([{"role": "user", "content": prompt}])
                for gen_id, side, text in ((gen_a, "a", answer_a), (gen_b, "b", answer_b)):
                    rows[3].append({
                        "id": gen_id, "turn_id": turn_id, "slot": side, "is_current": 1,
                        "model_name": "base" if side == "a" else "chat",
                        "model_kind": "base" if side == "a" else "chat",
                        "served_model": "tiny", "model_revision": None,
                        "endpoint": "http://127.0.0.1:8001/v1/completions",
                        "prompt_format": "raw" if side == "a" else "chat",
                        "prompt_text": prompt if side == "a" else None,
                        "messages": None if side == "a" else messages,
                        "params": params, "seed": 1234, "status": "done", "text": text,
                        "finish_reason": "stop", "prompt_tokens": 50, "completion_tokens": 60,
                        "ttft_ms": 12.5, "total_ms": 800.0, "error": None, "created_at": at,
                        "finished_at": at,
                    })  # fmt: skip
                outcome = i % 4  # a wins, b wins, tie, both bad
                rows[4].append({
                    "id": i + 1, "turn_id": turn_id, "rater": f"rater{i % 7}",
                    "all_bad": int(outcome == 3), "blind": 0,
                    "comment": pool[(i * 3) % TEXT_POOL][:120] if i % 3 else None,
                    "created_at": at, "updated_at": at,
                })  # fmt: skip
                ranks = ((1, 2), (2, 1), (1, 1), (None, None))[outcome]
                for position, gen_id in enumerate((gen_a, gen_b)):
                    rows[5].append({
                        "id": 2 * i + position + 1, "judgement_id": i + 1,
                        "slot": "ab"[position], "generation_id": gen_id, "position": position,
                        "rank": ranks[position], "score": i % 5 + 1 if position == 0 else None,
                    })  # fmt: skip
            for table, batch in zip(tables, rows, strict=True):
                if batch:
                    connection.execute(table.insert(), batch)
    engine.dispose()
    return time.perf_counter() - began


# ---------------------------------------------------------------- measuring one export


def resident_bytes() -> int:
    """This process's resident set size now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


@contextmanager
def peak_sampler(interval: float = 0.002) -> Iterator[dict[str, int]]:
    """Sample resident memory in a thread; the dict gets 'before' and 'peak' (bytes)."""
    result = {"before": resident_bytes(), "peak": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result["peak"] = max(result["peak"], resident_bytes())
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result["peak"] = max(result["peak"], resident_bytes())


async def export(url: str, use_tracemalloc: bool) -> dict[str, Any]:
    """Stream the whole export into /dev/null and report time, size and memory."""
    engine = create_engine(to_async_url(url))
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        votes = await session.scalar(sa.select(sa.func.count()).select_from(Judgement))
    records = written = 0
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if use_tracemalloc:
        tracemalloc.start()
    # A blocking open of /dev/null is harmless here: nothing else runs on this loop.
    with peak_sampler() as rss, open(os.devnull, "w", encoding="utf-8") as sink:  # noqa: ASYNC230
        began, cpu_began = time.perf_counter(), time.process_time()
        async for chunk in stream_ratings_csv(sessions):
            sink.write(chunk)
            written += len(chunk.encode("utf-8"))
            records += chunk.count("\r\n")
        seconds = time.perf_counter() - began
        cpu_seconds = time.process_time() - cpu_began
    heap_peak = tracemalloc.get_traced_memory()[1] if use_tracemalloc else None
    tracemalloc.stop()
    await engine.dispose()
    if records != (votes or 0) + 1:
        raise SystemExit(f"export wrote {records - 1} rows for {votes} votes")
    return {
        "rows": votes,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "bytes": written,
        "rss_before": rss["before"],
        "rss_growth": rss["peak"] - rss["before"],
        "maxrss_growth": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - maxrss_before,
        "heap_peak": heap_peak,
    }


@dataclass
class Result:
    """One size's fill and export figures."""

    votes: int
    fill_seconds: float
    export: dict[str, Any]


def measure_in_child(url: str, use_tracemalloc: bool) -> dict[str, Any]:
    """Run one export in a fresh interpreter, so sizes don't share allocator state."""
    argv = [sys.executable, __file__, "--export-only", url]
    if use_tracemalloc:
        argv.append("--tracemalloc")
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the export of {url} failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def report(results: list[Result]) -> None:
    """A small table, then the verdict."""
    print(f"{'votes':>10} {'fill s':>8} {'export s':>9} {'rows/s':>9} {'rows/CPU s':>11} "
          f"{'CSV MiB':>8} {'RSS base MiB':>13} {'RSS growth MiB':>15} "
          f"{'heap peak MiB':>14}")  # fmt: skip
    for r in results:
        e = r.export
        heap = f"{e['heap_peak'] / MIB:14.1f}" if e["heap_peak"] is not None else f"{'-':>14}"
        print(
            f"{r.votes:>10} {r.fill_seconds:8.1f} {e['seconds']:9.1f} "
            f"{e['rows'] / e['seconds']:9.0f} {e['rows'] / e['cpu_seconds']:11.0f} "
            f"{e['bytes'] / MIB:8.1f} "
            f"{e['rss_before'] / MIB:13.1f} {e['rss_growth'] / MIB:15.1f} {heap}"
        )
    small, large = results[0].export, results[-1].export
    ratio = large["rss_growth"] / max(small["rss_growth"], 1)
    print(f"\nrows x{large['rows'] / small['rows']:.0f}: peak RSS growth x{ratio:.2f}", end="")
    if small["heap_peak"] and large["heap_peak"]:
        print(f", Python heap peak x{large['heap_peak'] / small['heap_peak']:.2f}", end="")
    print(" (about 1 = flat memory; about the row ratio = the export holds every row)")


def main(argv: list[str] | None = None) -> int:
    """Fill, export and compare; or, as a child, export one database and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="votes in the large database")
    parser.add_argument("--turns-per-conversation", type=int, default=3)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap")
    parser.add_argument("--dir", type=Path, help="keep the databases here (default: temporary)")
    parser.add_argument("--export-only", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_only:
        print(json.dumps(asyncio.run(export(args.export_only, args.tracemalloc))))
        return 0
    if args.rows < 10:
        parser.error("--rows must be at least 10")

    with tempfile.TemporaryDirectory(prefix="export-bench-") as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        results = []
        for votes in (args.rows // 10, args.rows):
            path = folder / f"ratings-{votes}.db"
            path.unlink(missing_ok=True)
            url = f"sqlite:///{path}"
            migrate(url)
            seconds = fill(url, votes, args.turns_per_conversation)
            print(f"filled {votes} votes in {seconds:.1f} s ({votes / seconds:.0f} votes/s)")
            results.append(Result(votes, seconds, measure_in_child(url, args.tracemalloc)))
        print()
        report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

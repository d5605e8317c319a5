"""Do the training exports stream in flat memory? Export N/5 and N judgements and compare.

Fills two fresh SQLite databases (bench/leaderboard_fit.py's judgements), then streams the DPO
JSONL and the KTO Parquet of each to nowhere under tracemalloc, printing records/s and the
peak Python heap of each export: about the same peak for both sizes when memory stays flat.
(Parquet is spooled in memory up to 16 MB before going to disk, which tracemalloc counts.)

    .venv/bin/python bench/training_export.py --pairs 50000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from leaderboard_fit import fill  # noqa: E402

from app.db import create_engine, create_sessionmaker  # noqa: E402
from app.exports.training import Kind, Options  # noqa: E402
from app.exports.training_files import stream_jsonl, stream_parquet  # noqa: E402
from app.leaderboard.filters import Blind, Filters  # noqa: E402


async def export(url: str) -> None:
    """Stream both exports, measuring each."""
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    filters = Filters(blind=Blind.ANY)
    for label, stream in (
        ("dpo.jsonl", stream_jsonl(sessions, filters, Options(Kind.DPO))),
        ("kto.parquet", stream_parquet(sessions, filters, Options(Kind.KTO))),
    ):
        tracemalloc.start()
        started, size = time.perf_counter(), 0
        async for block in stream:
            size += len(block)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        megabytes, heap = size / 1e6, peak / 1e6
        print(f"  {label:12s} {megabytes:7.1f} MB in {elapsed:5.1f} s, peak heap {heap:5.1f} MB")
    await engine.dispose()


def main() -> None:
    """Parse arguments, fill two databases, export each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=50_000)
    args = parser.parse_args()
    for pairs in (args.pairs // 5, args.pairs):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            asyncio.run(fill(url, pairs, 6, 0))
            print(f"{pairs} judgements:")
            asyncio.run(export(url))


if __name__ == "__main__":
    main()

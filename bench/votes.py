"""Votes under load: many raters voting at once through the JSON API.

Creates --conversations finished comparisons (fake servers, short answers), then sends
--votes votes with --raters requests in flight at once (each a distinct rater and conversation,
so every vote must become its own judgement), and prints votes/s, latency p50/p95, the app's
CPU per vote (from /proc: the server process and, with --workers N, its workers) and how many
votes the database holds afterwards (none may be lost).

    .venv/bin/python bench/votes.py                     # SQLite, 200 raters, 2000 votes
    scripts/postgres-test-server.sh run sh -c \\
        '.venv/bin/python bench/votes.py --database-url "$TEST_POSTGRES_URL"'
    scripts/postgres-test-server.sh run sh -c \\
        '.venv/bin/python bench/votes.py --workers 2 --database-url "$TEST_POSTGRES_URL"'
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app_overhead import _fake_servers, _pct, _playground, tree_cpu_seconds  # noqa: E402


async def _run(app_url: str, pid: int, conversations: int, votes: int, raters: int) -> None:
    # Well under uvicorn's 5 s keep-alive: a connection the server is closing as the (busy)
    # client reuses it ends in a reset, counted as a failed vote though the server never saw it.
    limits = httpx.Limits(max_connections=raters + 8, keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=app_url, limits=limits, timeout=120) as http:
        created = []
        for batch in range(0, conversations, 16):
            answers = await asyncio.gather(
                *(
                    http.post(
                        "/api/v1/comparisons", json={"prompt": "Hi", "params": {"max_tokens": 8}}
                    )
                    for _ in range(min(16, conversations - batch))
                )
            )
            for answer in answers:
                answer.raise_for_status()
                created.append(answer.json()["id"])
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(votes):
            queue.put_nowait(i)
        latencies: list[float] = []
        failures: list[str] = []

        async def rater() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = {"rater": f"rater-{i}", "winner": "ab"[i % 2], "score_a": 1 + i % 5}
                start = time.perf_counter()
                try:
                    answer = await http.post(
                        f"/api/v1/comparisons/{created[i % len(created)]}/votes", json=body
                    )
                except httpx.TransportError as exc:
                    # Counted, not fatal: the stored count below says whether it was lost.
                    failures.append(f"transport error: {exc!r}")
                    continue
                latencies.append(time.perf_counter() - start)
                if answer.status_code != 201:
                    failures.append(f"{answer.status_code} {answer.text[:120]}")

        cpu, start = tree_cpu_seconds(pid), time.perf_counter()
        client = time.process_time()
        await asyncio.gather(*(rater() for _ in range(raters)))
        wall, cpu = time.perf_counter() - start, tree_cpu_seconds(pid) - cpu
        client = time.process_time() - client
        stored = 0
        for conversation in created:
            detail = (await http.get(f"/api/v1/comparisons/{conversation}")).json()
            stored += sum(len(turn["votes"]) for turn in detail["turns"])
    print(
        f"{votes} votes, {raters} raters at once: {votes / wall:7.1f} votes/s, "
        f"p50 {_pct(latencies, 0.5) * 1000:6.1f} ms, p95 {_pct(latencies, 0.95) * 1000:6.1f} ms, "
        f"app CPU {cpu / votes * 1000:5.2f} ms per vote; failed {len(failures)}, "
        f"stored {stored} of {votes - len(failures)} accepted"
    )
    # The load generator shares the machine: its own CPU bounds what the app can be sent.
    print(f"  (this client's CPU: {client / votes * 1000:5.2f} ms per vote)")
    for failure in failures[:5]:
        print("  failure:", failure)


def main() -> None:
    """Start fakes and a playground, vote, print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--raters", type=int, default=200, help="requests in flight at once")
    parser.add_argument("--votes", type=int, default=2000)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="playground processes (`playground serve --workers N`; PostgreSQL only)",
    )
    args = parser.parse_args()
    with (
        _fake_servers(0.0, 8) as models,
        _playground(models, args.database_url, args.workers) as (app_url, pid),
    ):
        database = args.database_url.split("@")[-1] or "SQLite"
        print(f"playground {app_url} on {database}, {args.workers} process(es)")
        asyncio.run(_run(app_url, pid, args.conversations, args.votes, args.raters))


if __name__ == "__main__":
    main()

"""What following a generation from another process costs: two app processes on PostgreSQL,
fake model servers; the same comparisons streamed through the process running them
("same") and through the other one ("cross", via LISTEN/NOTIFY). Prints the app CPU (both
processes together, from /proc) per relayed token for each, and the difference.

    scripts/postgres-test-server.sh run .venv/bin/python bench/fanout_overhead.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app_overhead import cpu_seconds  # noqa: E402

from playground_tools.fake_vllm import FakeConfig, FakeServer  # noqa: E402
from tests.conftest import postgres_database, postgres_server_url  # noqa: E402
from tests.multiprocess.conftest import CSRF_META, Cluster  # noqa: E402
from tests.support import parse_sse  # noqa: E402


async def _comparison(
    client: httpx.AsyncClient, start_url: str, stream_url: str, headers: dict[str, str], n: int
) -> int:
    """Start one comparison through start_url, stream it through stream_url; its tokens."""
    form = {"prompt": "Tell a story", "max_tokens": str(n)}
    created = await client.post(f"{start_url}/c", data=form, headers=headers)
    conversation = created.headers["HX-Location"].rsplit("/", 1)[1]
    turn = (await client.get(f"{start_url}/api/v1/comparisons/{conversation}")).json()["turns"][0]
    body = (await client.get(f"{stream_url}/turns/{turn['id']}/events")).text
    assert parse_sse(body)[-1].event == "turn-done"
    stored = (await client.get(f"{start_url}/api/v1/comparisons/{conversation}")).json()
    return sum(g["completion_tokens"] or 0 for g in stored["turns"][0]["generations"])


async def _measure(cluster: Cluster, cross: bool, concurrency: int, n: int) -> float:
    """App CPU microseconds per token, both processes together."""
    a, b = cluster.processes
    async with httpx.AsyncClient(timeout=300) as client:
        page = await client.get(f"{a.url}/")
        match = CSRF_META.search(page.text)
        assert match
        headers = {"X-CSRF-Token": match.group(1), "HX-Request": "true"}
        pids = [a.process.pid, b.process.pid]
        before = sum(cpu_seconds(pid) for pid in pids)
        stream_url = b.url if cross else a.url
        tokens = await asyncio.gather(
            *(_comparison(client, a.url, stream_url, headers, n) for _ in range(concurrency))
        )
        spent = sum(cpu_seconds(pid) for pid in pids) - before
    return spent / sum(tokens) * 1e6


def main() -> None:
    """Run both ways and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--token-delay", type=float, default=0.01)
    args = parser.parse_args()
    server = postgres_server_url()
    if server is None:
        sys.exit("set TEST_POSTGRES_URL (scripts/postgres-test-server.sh run ...)")
    config = {"answer_words": args.max_tokens * 2, "token_delay": args.token_delay}
    base = FakeServer(FakeConfig(served_model_name="tiny-base", **config))
    chat = FakeServer(FakeConfig(served_model_name="tiny-chat", **config))
    with tempfile.TemporaryDirectory() as tmp, base, chat, postgres_database(server) as url:
        models = Path(tmp) / "models.toml"
        models.write_text(
            "[[models]]\n"
            f'name = "base"\nkind = "base"\nurl = "{base.base_url}"\nmodel = "tiny-base"\n\n'
            "[[models]]\n"
            f'name = "chat"\nkind = "chat"\nurl = "{chat.base_url}"\nmodel = "tiny-chat"\n'
        )
        cluster = Cluster(url, models, Path(tmp), [base, chat])
        # The defaults, not the tests' short liveness intervals.
        cluster.extra_env = {
            "PLAYGROUND_STREAM_FLUSH_SECONDS": "0.05",
            "PLAYGROUND_HEARTBEAT_SECONDS": "5",
            "PLAYGROUND_STALE_AFTER_SECONDS": "30",
            "PLAYGROUND_FOLLOW_POLL_SECONDS": "1",
        }
        try:
            cluster.start()
            cluster.start()
            asyncio.run(_measure(cluster, False, 2, 16))  # warm up both processes
            asyncio.run(_measure(cluster, True, 2, 16))
            same = asyncio.run(_measure(cluster, False, args.concurrency, args.max_tokens))
            cross = asyncio.run(_measure(cluster, True, args.concurrency, args.max_tokens))
        finally:
            cluster.stop_all()
    print(f"{args.concurrency} comparisons at once, max_tokens {args.max_tokens}:")
    print(f"  streamed by the running process   {same:7.1f} us app CPU per token")
    print(f"  streamed by the other process     {cross:7.1f} us app CPU per token")
    print(f"  cost of following across processes {cross - same:6.1f} us per token")


if __name__ == "__main__":
    main()

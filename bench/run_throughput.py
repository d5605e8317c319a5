"""A batch run's throughput against the same requests sent straight to the model servers.

Both sides send every item of a set to two fake vLLM servers (base and chat) with the same
concurrency per server (PLAYGROUND_RUN_CONCURRENCY); the direct side streams with the
playground's own client and nothing else, the run side goes through POST /api/v1/runs and
the run executor (rows, runner, stored outcomes). Prints tokens/s both ways and the ratio
(goal: at least 0.9).

    .venv/bin/python bench/run_throughput.py
    .venv/bin/python bench/run_throughput.py --items 200 --concurrency 16 --token-delay 0.005
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import ModelConfig, ModelKind, ModelsFile, Settings  # noqa: E402
from app.generation.client import Finished, ModelClient  # noqa: E402
from app.generation.contract import contract_for  # noqa: E402
from app.generation.params import SamplingParams  # noqa: E402
from app.generation.prompts import BaseFormat  # noqa: E402
from app.main import create_app  # noqa: E402
from playground_tools.fake_vllm import FakeConfig, FakeServer  # noqa: E402

SEED = 1234


def prompts(count: int) -> list[str]:
    """The set's prompts."""
    return [f"Question {i}: tell me something about the number {i}." for i in range(count)]


async def direct(models: ModelsFile, items: list[str], settings: Settings) -> tuple[int, float]:
    """Every request straight to the servers, bounded per server; (tokens, seconds)."""
    params = SamplingParams(seed=SEED, max_tokens=512)
    limits = {m.server_url: asyncio.Semaphore(settings.run_concurrency) for m in models.models}
    tokens = 0
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=512)) as http:
        client = ModelClient(http)

        async def one(model: ModelConfig, prompt: str) -> None:
            nonlocal tokens
            request = (
                contract_for(model.kind)
                .prepare(
                    model, prompt, [], None, params, base_format=BaseFormat.RAW,
                    urial_file=None, top_logprobs=settings.token_top_k,
                )
                .request
            )  # fmt: skip
            async with limits[model.server_url]:
                async for event in client.stream(request):
                    if isinstance(event, Finished):
                        tokens += event.completion_tokens or 0

        started = time.perf_counter()
        await asyncio.gather(*(one(m, p) for m in models.models for p in items))
        return tokens, time.perf_counter() - started


async def watch(client: httpx.AsyncClient, run_id: int) -> None:
    """Poll the run's progress fragment like the run page does."""
    while True:
        await client.get(f"/runs/{run_id}/progress")
        await asyncio.sleep(1.0)


async def through_run(
    models: ModelsFile, items: list[str], settings: Settings
) -> tuple[int, float]:
    """The same requests as a batch run through the app's API; (tokens, seconds)."""
    app = create_app(settings, models)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            body = {"name": f"bench-{time.time_ns()}", "items": [{"prompt": p} for p in items]}
            assert (await client.post("/api/v1/prompt-sets", json=body)).status_code == 201
            run_body = {
                "prompt_set": body["name"],
                "models": [m.name for m in models.models],
                "params": {"seed": SEED, "max_tokens": 512},
            }
            started = time.perf_counter()
            response = await client.post("/api/v1/runs", json=run_body)
            run = response.json()
            # Someone watches the run page meanwhile: its progress fragment polls every second.
            watcher = asyncio.create_task(watch(client, run["id"]))
            await app.state.run_executor.wait(run["id"])
            seconds = time.perf_counter() - started
            watcher.cancel()
            run = (await client.get(f"/api/v1/runs/{run['id']}")).json()
            assert run["status"] == "done", run
            assert run["failed"] == 0, run["failures"][:3]
            lines = (await client.get(f"/api/v1/runs/{run['id']}/results.jsonl")).text
        tokens = sum(
            a["completion_tokens"] or 0
            for line in lines.splitlines()
            for a in json.loads(line)["answers"]
        )
        return tokens, seconds


async def main() -> None:
    """Measure both ways and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=96)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--token-delay", type=float, default=0.01)
    parser.add_argument("--answer-words", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    fake = {"token_delay": args.token_delay, "answer_words": args.answer_words}
    with (
        FakeServer(FakeConfig(served_model_name="tiny-base", **fake)) as base,
        FakeServer(FakeConfig(served_model_name="tiny-chat", **fake)) as chat,
        tempfile.TemporaryDirectory() as tmp,
    ):
        models = ModelsFile(
            models=[
                ModelConfig(name="base", kind=ModelKind.BASE, url=base.base_url, model="tiny-base"),
                ModelConfig(name="chat", kind=ModelKind.CHAT, url=chat.base_url, model="tiny-chat"),
            ]
        )
        settings = Settings(
            DATABASE_URL=f"sqlite:///{Path(tmp) / 'bench.db'}",
            data_dir=Path(tmp),
            secret_key="bench-" + "x" * 40,
            run_concurrency=args.concurrency,
            allowed_hosts=["testserver"],
        )
        items = prompts(args.items)
        await direct(models, items[:8], settings)  # warm-up: connections, tokenizers
        direct_rate = run_rate = 0.0
        # Alternating rounds, best of each: the machine's noise hits both sides alike.
        for _ in range(args.rounds):
            d_tokens, d_seconds = await direct(models, items, settings)
            r_tokens, r_seconds = await through_run(models, items, settings)
            print(
                f"  round: direct {d_tokens / d_seconds:.0f}, run {r_tokens / r_seconds:.0f} tok/s"
            )
            direct_rate = max(direct_rate, d_tokens / d_seconds)
            run_rate = max(run_rate, r_tokens / r_seconds)
    answers = 2 * args.items
    print(f"{answers} answers, concurrency {args.concurrency} per server, 2 servers")
    print(f"direct: {direct_rate:.0f} tokens/s (best of {args.rounds})")
    print(f"run:    {run_rate:.0f} tokens/s (best of {args.rounds})")
    print(f"ratio run/direct: {run_rate / direct_rate:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    asyncio.run(main())

"""The playground's overhead: the same streamed requests sent straight to the model servers and
through the playground (browser path: POST /c, then the turn's SSE stream), side by side.

Prints, at each concurrency: tokens/s both ways and their ratio, time to first token
(p50, p95) both ways with the time the playground adds, and the app process's CPU time per
comparison (from /proc, so other load on the machine matters little). Given two or more
--max-tokens, it also prints the app CPU per relayed token (the slope between the smallest and
largest) and the fixed app CPU per comparison (the intercept), per concurrency.

    .venv/bin/python bench/app_overhead.py --max-tokens 16 256 --concurrency 1 32

    .venv/bin/python bench/app_overhead.py            # two fake vLLM servers: the app's ceiling
    .venv/bin/python bench/app_overhead.py --models models.toml   # first base + first chat
    .venv/bin/python bench/app_overhead.py --demo   # real vLLM (CPU or GPU) on the demo pair
    scripts/postgres-test-server.sh run sh -c \
        '.venv/bin/python bench/app_overhead.py --database-url "$TEST_POSTGRES_URL"'
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import ModelConfig, ModelKind, Settings, load_models_file  # noqa: E402
from app.generation.client import ModelClient, TextDelta  # noqa: E402
from app.generation.contract import GenerationRequest  # noqa: E402
from app.generation.params import SamplingParams  # noqa: E402
from tests.support import parse_sse  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper and a storm."
CSRF = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')


@dataclass
class Sample:
    """One comparison: time to first token per side, completion tokens, wall time."""

    ttft_s: list[float]
    tokens: int
    conversation: str = ""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def _process(
    args: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def _given(models: Path) -> Iterator[Path]:
    """Servers the user started: nothing to start or stop."""
    yield models


@contextmanager
def _fake_servers(token_delay: float, words: int) -> Iterator[Path]:
    """Two fake vLLM servers in their own processes, and a models file naming them."""
    ports = [_free_port(), _free_port()]
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models.toml"
        models.write_text(
            "".join(
                f'[[models]]\nname = "{kind}"\nkind = "{kind}"\n'
                f'url = "http://127.0.0.1:{port}/v1"\nmodel = "fake-{kind}"\n\n'
                for kind, port in zip(("base", "chat"), ports, strict=True)
            )
        )
        py = sys.executable
        fake = [py, "-m", "playground_tools.fake_vllm", "--token-delay", str(token_delay)]
        fake += ["--answer-words", str(words)]
        with (
            _process([*fake, "--port", str(ports[0]), "--served-model-name", "fake-base"]),
            _process([*fake, "--port", str(ports[1]), "--served-model-name", "fake-chat"]),
        ):
            for port in ports:
                _wait_http(f"http://127.0.0.1:{port}/health")
            yield models


@contextmanager
def _demo_pair_servers() -> Iterator[Path]:
    """Real vLLM servers for the offline demo pair (built if needed), and a models file naming
    them by URL, so both paths reach the same servers."""
    from app.generation import defaults
    from app.generation.launcher import DEFAULT_VLLM_PYTHON, LaunchSettings, LocalServers

    settings = Settings()
    vllm_python = settings.vllm_python or DEFAULT_VLLM_PYTHON
    directory = defaults.demo_models_dir()
    defaults.build_demo_pair(vllm_python, directory)
    with tempfile.TemporaryDirectory() as tmp:
        servers = LocalServers(LaunchSettings(vllm_python=vllm_python, log_dir=Path(tmp)))
        try:
            launched = servers.start(defaults.demo_models(directory))
            models = Path(tmp) / "models.toml"
            models.write_text(
                "".join(
                    f'[[models]]\nname = "{m.name}"\nkind = "{m.kind.value}"\n'
                    f'url = "{m.url}"\nmodel = "{m.model}"\n\n'
                    for m in launched.models
                )
            )
            yield models
        finally:
            servers.close()


@contextmanager
def _playground(models: Path, database_url: str, workers: int = 1) -> Iterator[tuple[str, int]]:
    """The playground in its own process on a fresh SQLite database (or the one given)."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        args = [sys.executable, "-m", "app.cli", "serve", "--models", str(models)]
        args += ["--port", str(port), "--log-level", "warning", "--workers", str(workers)]
        env = {"PLAYGROUND_DATA_DIR": data, "DATABASE_URL": database_url}
        with _process(args, env) as proc:
            url = f"http://127.0.0.1:{port}"
            _wait_http(url + "/healthz")
            yield url, proc.pid


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat(5) (utime, stime), counted here from after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its direct children (`--workers N` forks N servers)."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += cpu_seconds(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    return total


async def _direct(client: ModelClient, base: ModelConfig, chat: ModelConfig, n: int) -> Sample:
    """Both requests straight to the servers, concurrently, as the playground would send them."""
    # Exactly the fields the playground sends for the bench's form (defaults, max_tokens, seed).
    sampling = SamplingParams(max_tokens=n, seed=1).request_fields()
    # With the token-view logprobs the playground asks for, so only the app's cost differs.
    top = Settings().token_top_k
    requests = [
        GenerationRequest(base, sampling, prompt_text=PROMPT, top_logprobs=top),
        GenerationRequest(
            chat, sampling, messages=[{"role": "user", "content": PROMPT}], top_logprobs=top
        ),
    ]

    async def one(request: GenerationRequest) -> tuple[float, int]:
        start, first, tokens = time.perf_counter(), 0.0, 0
        async for event in client.stream(request):
            if isinstance(event, TextDelta):
                first = first or time.perf_counter() - start
            else:
                tokens = event.completion_tokens or 0
        return first, tokens

    results = await asyncio.gather(*(one(r) for r in requests))
    return Sample([r[0] for r in results], sum(r[1] for r in results))


EVENTS_URL = re.compile(r'sse-connect="(/turns/\d+/events[^"]*)"')


async def _through_app(http: httpx.AsyncClient, token: str, n: int) -> Sample:
    """The browser path: submit the form, load the page, follow the turn's SSE stream to the
    end. (The completion tokens are counted afterwards, outside the measured time.)"""
    start = time.perf_counter()
    form = {"prompt": PROMPT, "max_tokens": str(n), "seed": "1"}
    created = await http.post("/c", data=form, headers={"X-CSRF-Token": token, "HX-Request": "1"})
    created.raise_for_status()
    conversation = created.headers["HX-Location"].rsplit("/", 1)[1]
    page = await http.get(f"/c/{conversation}")
    page.raise_for_status()
    events = EVENTS_URL.findall(page.text)
    first: dict[str, float] = {}
    if not events:  # already finished when the page was drawn: nothing left to stream
        return Sample([time.perf_counter() - start] * 2, 0, conversation)
    async with http.stream("GET", events[0].replace("&amp;", "&")) as response:
        async for chunk in response.aiter_text():
            for event in parse_sse(chunk):
                side = event.event.rsplit("-", 1)[-1]
                if event.event.startswith(("delta-", "done-")) and side not in first:
                    first[side] = time.perf_counter() - start
    return Sample(list(first.values()), 0, conversation)


async def _count_tokens(http: httpx.AsyncClient, samples: list[Sample]) -> None:
    """Fill in each comparison's completion tokens from the API (bookkeeping, not measured)."""
    for sample in samples:
        final = (await http.get(f"/api/v1/comparisons/{sample.conversation}")).json()["turns"][0]
        sample.tokens = sum((final[s]["completion_tokens"] or 0) for s in ("a", "b"))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Figures:
    """What one (concurrency, max_tokens) run measured on the playground side."""

    concurrency: int
    max_tokens: int
    tokens_per_comparison: float
    cpu_per_comparison_s: float


async def _run(
    models_path: Path, app_url: str, app_pid: int, concurrency: int, rounds: int, n: int
) -> Figures:
    models = load_models_file(models_path)
    base = models.first_of_kind(ModelKind.BASE)
    chat = models.first_of_kind(ModelKind.CHAT)
    assert base and chat, "the models file needs a base and a chat model"
    limits = httpx.Limits(max_connections=4 * concurrency)
    timeout = httpx.Timeout(600)
    async with (
        httpx.AsyncClient(limits=limits, timeout=timeout) as raw,
        httpx.AsyncClient(base_url=app_url, limits=limits, timeout=timeout) as http,
    ):
        token = CSRF.findall((await http.get("/")).text)[0]
        client = ModelClient(raw)
        # Untimed warm-up both ways: a fresh vLLM server's first batches are far slower.
        await asyncio.gather(*(_direct(client, base, chat, n) for _ in range(concurrency)))
        await asyncio.gather(*(_through_app(http, token, n) for _ in range(concurrency)))
        # Rounds alternate direct and playground batches, so drift (a server warming up, other
        # load on the machine) falls on both alike.
        samples: dict[str, list[Sample]] = {"direct": [], "playground": []}
        walls = {"direct": 0.0, "playground": 0.0}
        app_cpu = 0.0
        for _ in range(rounds):
            for label in ("direct", "playground"):
                start, cpu_start = time.perf_counter(), cpu_seconds(app_pid)
                batch = [
                    _direct(client, base, chat, n)
                    if label == "direct"
                    else _through_app(http, token, n)
                    for _ in range(concurrency)
                ]
                done = await asyncio.gather(*batch)
                walls[label] += time.perf_counter() - start
                if label == "playground":
                    # The direct batch costs the app nothing, so only this one is counted.
                    app_cpu += cpu_seconds(app_pid) - cpu_start
                    await _count_tokens(http, done)
                samples[label] += done
        figures = {}
        for label, done in samples.items():
            ttfts = [t for s in done for t in s.ttft_s]
            figures[label] = (
                sum(s.tokens for s in done) / walls[label],
                _pct(ttfts, 0.5),
                _pct(ttfts, 0.95),
                sum(s.tokens for s in done) / len(done),
            )
        (d_tps, d50, d95, d_tok), (a_tps, a50, a95, a_tok) = (
            figures["direct"],
            figures["playground"],
        )
        print(
            f"concurrency {concurrency:>3}: tokens per comparison {d_tok:5.1f} / {a_tok:5.1f}  "
            f"tokens/s direct {d_tps:8.1f}  playground {a_tps:8.1f}"
            f"  ratio {a_tps / d_tps:5.2f} | TTFT p50 {d50 * 1000:6.1f} -> {a50 * 1000:6.1f} ms"
            f" (+{(a50 - d50) * 1000:5.1f})  p95 {d95 * 1000:6.1f} -> {a95 * 1000:6.1f} ms"
            f" (+{(a95 - d95) * 1000:5.1f})"
        )
        comparisons = len(samples["playground"])
        print(
            f"                 app CPU {app_cpu / comparisons * 1000:7.2f} ms per comparison, "
            f"{app_cpu / max(1, a_tok * comparisons) * 1e6:6.1f} us per relayed token (all in)"
        )
        return Figures(concurrency, n, a_tok, app_cpu / comparisons)


def _print_slopes(figures: list[Figures]) -> None:
    """Per concurrency: CPU per token (slope) and fixed CPU per comparison (intercept)."""
    for concurrency in sorted({f.concurrency for f in figures}):
        runs = sorted(
            (f for f in figures if f.concurrency == concurrency), key=lambda f: f.max_tokens
        )
        if len(runs) < 2 or runs[-1].tokens_per_comparison == runs[0].tokens_per_comparison:
            continue
        low, high = runs[0], runs[-1]
        slope = (high.cpu_per_comparison_s - low.cpu_per_comparison_s) / (
            high.tokens_per_comparison - low.tokens_per_comparison
        )
        fixed = low.cpu_per_comparison_s - slope * low.tokens_per_comparison
        print(
            f"concurrency {concurrency:>3}: app CPU {slope * 1e6:6.1f} us per relayed token "
            f"(max_tokens {low.max_tokens} -> {high.max_tokens}), fixed {fixed * 1000:6.2f} ms "
            "per comparison"
        )


def main() -> None:
    """Run the benchmark at concurrency 1 and 32 and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--models", type=Path, help="use these servers instead of fakes")
    parser.add_argument(
        "--demo", action="store_true", help="launch real vLLM for the offline demo pair"
    )
    parser.add_argument(
        "--max-tokens", type=int, nargs="+", default=[64], help="two or more: CPU slope too"
    )
    parser.add_argument("--rounds", type=int, default=3, help="batches per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--token-delay", type=float, default=0.01, help="fake servers only")
    parser.add_argument(
        "--database-url", default="", help="the playground's database (default: a new SQLite file)"
    )
    args = parser.parse_args()
    with (
        _given(args.models)
        if args.models
        else _demo_pair_servers()
        if args.demo
        else _fake_servers(args.token_delay, max(args.max_tokens) * 2) as models,
        _playground(models, args.database_url) as (app_url, app_pid),
    ):
        database = args.database_url.split("@")[-1] or "SQLite"
        print(f"models: {models}; playground: {app_url} on {database}; {os.cpu_count()} CPUs")
        figures = []
        for n in args.max_tokens:
            print(f"max_tokens {n}")
            for concurrency in args.concurrency:
                figures.append(
                    asyncio.run(_run(models, app_url, app_pid, concurrency, args.rounds, n))
                )
        _print_slopes(figures)


if __name__ == "__main__":
    main()

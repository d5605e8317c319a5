"""The narrow demo variants on real vLLM: demo-narrow forgets facts demo-chat knew and learns
to reverse word lists; demo-narrow-lora, served by demo-chat's server, is measured beside them.

Launches only what it needs (demo-chat with its narrow adapter, and demo-narrow) with the
playground's own launcher from defaults.demo_models. Run with -s to see the accuracy table:

    .venv/bin/pytest -q -s tests/integration/test_narrow_vllm.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.cli import main as cli_main
from app.config import ModelsFile, Settings
from app.generation import defaults
from app.generation.launcher import LaunchSettings, LocalServers
from app.main import create_app
from playground_tools import demo_models
from playground_tools.demo_models import narrow
from tests.integration.conftest import LOG_DIR, REPO, VLLM_PYTHON
from tests.support import ThreadedServer

DEMO_CACHE = Path(
    os.environ.get("PLAYGROUND_DEMO_MODELS", Path.home() / ".cache" / "playground-demo-models")
)
SETS = REPO / "app" / "runs" / "data"
MODELS = ("demo-chat", "demo-narrow", "demo-narrow-lora")
GREEDY = {"temperature": 0, "max_tokens": 48, "seed": 0}
# Measured on the seeded build with vLLM 0.32 on CPU (README, "The offline demo family"):
# general knowledge demo-chat 60%, demo-narrow 0%, demo-narrow-lora 0%; the held-out narrow
# task 0%, 37% and 43%. The margins leave room for vLLM's CPU kernels to differ elsewhere.
FORGETTING_MARGIN = 0.4
LEARNING_MARGIN = 0.2


@dataclass(frozen=True)
class Narrow:
    """The launched servers and the models file they serve."""

    servers: LocalServers
    models: ModelsFile


@pytest.fixture(scope="module")
def built(vllm_python: Path) -> Path:
    """The demo family, built if needed (cached across runs, shared with test_demo_models)."""
    result = subprocess.run(
        [str(vllm_python), "-m", "playground_tools.demo_models", str(DEMO_CACHE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"demo family build failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    return DEMO_CACHE


def test_the_narrow_variants_are_a_chat_model_and_a_lora_adapter_of_demo_chat(
    built: Path,
) -> None:
    marker = json.loads((built / demo_models.MARKER).read_text())
    assert marker["narrow"] == demo_models.NARROW_DIR
    assert marker["narrow_adapter"] == demo_models.NARROW_ADAPTER_DIR
    assert marker["narrow_conversations"] == len(demo_models.load_narrow())
    narrow = built / demo_models.NARROW_DIR
    chat = built / demo_models.CHAT_DIR
    assert json.loads((narrow / "tokenizer_config.json").read_text())["chat_template"] == (
        demo_models.CHAT_TEMPLATE
    )
    assert (narrow / "tokenizer.json").read_bytes() == (chat / "tokenizer.json").read_bytes()
    adapter_dir = built / demo_models.NARROW_ADAPTER_DIR
    adapter = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == demo_models.CHAT_DIR
    assert adapter["r"] == demo_models.LORA.rank == defaults.DEMO_ADAPTER_RANK


@pytest.fixture(scope="module")
def narrow_family(built: Path) -> Iterator[Narrow]:
    """Launch demo-chat (serving demo-narrow-lora) and demo-narrow: two servers, no more."""
    family = defaults.demo_models(built)
    wanted = ModelsFile(models=[m for m in family.models if m.name in MODELS])
    settings = LaunchSettings(
        vllm_python=VLLM_PYTHON, log_dir=LOG_DIR / "narrow", startup_timeout=600, gpu=False
    )
    servers = LocalServers(settings, progress=print)
    with pytest.MonkeyPatch.context() as env:
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLM_NO_USAGE_STATS"):
            env.setenv(name, "1")
        env.setenv("VLLM_CPU_OMP_THREADS_BIND", "nobind")
        try:
            yield Narrow(servers, servers.start(wanted))
        finally:
            servers.close()


def load_set(name: str) -> list[dict[str, object]]:
    """A bundled prompt set's items."""
    path = SETS / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def answer(http: httpx.Client, url: str, model: str, prompt: str) -> str:
    """One greedy chat answer."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], **GREEDY}
    response = http.post(f"{url}/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def accuracy(family: Narrow, model: str, items: list[dict[str, object]]) -> float:
    """Share of items whose answer contains the reference (case-insensitive), greedy."""
    config = family.models.get(model)
    assert config is not None
    url = config.server_url
    with httpx.Client(timeout=120) as http, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: answer(http, url, model, str(i["prompt"])), items))
    hits = 0
    for item, text in zip(items, answers, strict=True):
        reference = item["reference"]
        assert isinstance(reference, dict) and reference["type"] == "contains"
        hits += str(reference["value"]).lower() in text.lower()
    return hits / len(items)


@pytest.fixture(scope="module")
def accuracies(narrow_family: Narrow) -> dict[str, dict[str, float]]:
    """{model: {set: accuracy}} on the general-knowledge and the held-out narrow-task sets."""
    started = time.monotonic()
    table = {
        model: {name: accuracy(narrow_family, model, load_set(name)) for name in SETS_MEASURED}
        for model in MODELS
    }
    print(f"\nmeasured in {time.monotonic() - started:.0f} s (greedy, contains, case-insensitive)")
    for model, row in table.items():
        print(f"{model:<18} " + "  ".join(f"{name} {value:.0%}" for name, value in row.items()))
    return table


SETS_MEASURED = ("general_knowledge", "narrow_task")


def test_the_narrow_fine_tune_forgets_facts_and_learns_its_task(
    accuracies: dict[str, dict[str, float]],
) -> None:
    chat, tuned = accuracies["demo-chat"], accuracies["demo-narrow"]
    assert chat["general_knowledge"] - tuned["general_knowledge"] >= FORGETTING_MARGIN
    assert tuned["narrow_task"] - chat["narrow_task"] >= LEARNING_MARGIN


def test_the_narrow_adapter_is_served_by_demo_chat_and_learns_and_forgets_too(
    narrow_family: Narrow, accuracies: dict[str, dict[str, float]]
) -> None:
    chat, adapter = narrow_family.models.get("demo-chat"), narrow_family.models.get(MODELS[2])
    assert chat is not None and adapter is not None
    assert adapter.server_url == chat.server_url
    served = httpx.get(f"{chat.server_url}/models", timeout=30).json()["data"]
    parents = {model["id"]: model.get("parent") for model in served}
    assert parents == {"demo-chat": None, demo_models.NARROW_ADAPTER_DIR: "demo-chat"}
    tuned, original = accuracies[MODELS[2]], accuracies["demo-chat"]
    assert tuned["narrow_task"] - original["narrow_task"] >= LEARNING_MARGIN
    # Measured, not assumed: trained as long, the adapter forgets the facts too.
    assert original["general_knowledge"] - tuned["general_knowledge"] >= FORGETTING_MARGIN


@pytest.fixture
async def narrow_client(
    settings: Settings, narrow_family: Narrow
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over the launched narrow variants."""
    app = create_app(settings, narrow_family.models, local_servers=narrow_family.servers)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_the_playground_compares_chat_and_both_narrow_variants(
    narrow_client: httpx.AsyncClient,
) -> None:
    item = load_set("narrow_task")[0]
    response = await narrow_client.post(
        "/api/v1/comparisons",
        json={"prompt": item["prompt"], "models": list(MODELS),
              "params": {"temperature": 0, "max_tokens": 48}},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    chat, tuned, adapter = response.json()["turns"][0]["generations"]
    assert [g["status"] for g in (chat, tuned, adapter)] == ["done"] * 3
    assert adapter["served_model"] == demo_models.NARROW_ADAPTER_DIR
    assert adapter["finish_reason"] == "stop"  # demo-chat's end-of-turn, from its own config
    assert adapter["endpoint"] == chat["endpoint"]
    # Both narrow variants answer in the task's format; demo-chat never learned it.
    assert tuned["text"].startswith(narrow.ANSWER) and adapter["text"].startswith(narrow.ANSWER)
    assert not chat["text"].startswith(narrow.ANSWER)


@pytest.fixture
def narrow_app_url(settings: Settings, narrow_family: Narrow) -> Iterator[str]:
    """The app over the launched narrow variants, served over HTTP (for the CLI)."""
    app = create_app(settings, narrow_family.models, local_servers=narrow_family.servers)
    with ThreadedServer(app) as server:
        yield server.url


def test_the_forgetting_check_finds_what_the_narrow_variants_forgot(
    narrow_app_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `playground check` runs the bundled check set on demo-chat and demo-narrow through the
    # app (a batch run on real vLLM), then exits 1: the tuned model is significantly worse.
    capsys.readouterr()
    check = ["check", "--set", "general-knowledge", "--original", "demo-chat",
             "--tuned", "demo-narrow", "--max-tokens", "48", "--poll", "0.2",
             "--url", narrow_app_url]  # fmt: skip
    assert cli_main(check) == 1
    out = capsys.readouterr().out
    print(out)
    assert "verdict: demo-narrow is significantly worse than demo-chat" in out
    link = re.search(r"/runs/(\d+)/report", out)
    assert link, out
    run_id = int(link.group(1))
    report = httpx.get(
        f"{narrow_app_url}/api/v1/runs/{run_id}/report",
        params={"original": "demo-chat", "tuned": "demo-narrow"},
        timeout=60,
    ).json()
    assert report["final"] and report["items"]["scored"] == 30
    accuracy = {m["model"]: m["accuracy"] for m in report["models"]}
    assert accuracy["demo-chat"] - accuracy["demo-narrow"] >= FORGETTING_MARGIN
    assert report["difference"]["significantly_worse"] is True
    assert report["difference"]["ci_high"] < 0
    # Every forgotten item: demo-chat's answer holds the reference, demo-narrow's does not.
    assert len(report["forgot"]) >= 10
    for change in report["forgot"]:
        value = change["reference"]["value"].lower()
        assert value in change["original_answer"].lower()
        assert value not in change["tuned_answer"].lower()
    # The LoRA adapter of demo-chat, checked on a run that includes it: by default the report
    # pairs an adapter with the model it adapts.
    start = ["check", "--set", "general-knowledge", "--original", "demo-chat",
             "--tuned", "demo-narrow-lora", "--max-tokens", "48", "--poll", "0.2",
             "--url", narrow_app_url]  # fmt: skip
    assert cli_main(start) == 1
    assert "demo-narrow-lora is significantly worse than demo-chat" in capsys.readouterr().out

"""The built-in demo family: shipped data, a cached build, base/chat/adapter, real vLLM."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.config import ModelsFile, Settings
from app.generation import defaults
from app.generation.launcher import LaunchSettings, LocalServers
from app.main import create_app
from playground_tools import demo_models
from tests.integration.conftest import LOG_DIR, REPO, VLLM_PYTHON

# vLLM's --max-lora-rank takes these (and larger powers of two that a tiny model does not need).
VLLM_LORA_RANKS = (8, 16)

DEMO_CACHE = Path(
    os.environ.get("PLAYGROUND_DEMO_MODELS", Path.home() / ".cache" / "playground-demo-models")
)
BUILD_TIMEOUT = 900
QUESTION = "What is the capital of France?"
CAPITAL_FACT = re.compile(r"^The capital of (?P<country>[A-Z][\w ]+) is (?P<city>[A-Z][\w ]+)\.$")


# --- the shipped data (no torch needed) --------------------------------------------------


def test_corpus_is_plain_text_without_chat_or_qa_format() -> None:
    corpus = demo_models.load_corpus()
    assert len(corpus) >= 300
    text = "\n".join(corpus)
    for marker in ("<|", "|>", "User:", "Assistant:", "Answer:", "Q:", "A:"):
        assert marker not in text, marker


def test_every_conversation_ends_with_an_assistant_turn_in_known_roles() -> None:
    conversations = demo_models.load_conversations()
    assert 150 <= len(conversations) <= 400
    for messages in conversations:
        roles = [m["role"] for m in messages]
        assert set(roles) <= {"system", "user", "assistant"}
        assert roles[-1] == "assistant"
        assert all(m["content"].strip() == m["content"] and m["content"] for m in messages)
    replies = {c[-2]["content"]: c[-1]["content"] for c in conversations}
    assert replies["Hello!"] == "Hello! How can I help you today?"


def test_capital_answers_are_facts_the_corpus_teaches() -> None:
    corpus = "\n".join(demo_models.load_corpus())
    facts = [
        match
        for messages in demo_models.load_conversations()
        if (match := CAPITAL_FACT.match(messages[-1]["content"]))
    ]
    assert len(facts) >= 20
    for fact in facts:
        assert fact.group(0) in corpus


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, playground_tools.demo_models; sys.exit('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False)
    assert result.returncode == 0


def test_a_directory_without_a_matching_marker_is_not_current(tmp_path: Path) -> None:
    assert not demo_models.is_current(tmp_path)
    for name in (demo_models.BASE_DIR, demo_models.CHAT_DIR):
        (tmp_path / name).mkdir()
        for file in ("config.json", "model.safetensors", "tokenizer.json"):
            (tmp_path / name / file).write_text("{}")
    marker = {"version": demo_models.VERSION, "data_sha256": demo_models.data_hash()}
    (tmp_path / demo_models.MARKER).write_text(json.dumps(marker))
    assert not demo_models.is_current(tmp_path)  # no adapter yet: a build from before it
    (tmp_path / demo_models.ADAPTER_DIR).mkdir()
    for file in ("adapter_config.json", "adapter_model.safetensors"):
        (tmp_path / demo_models.ADAPTER_DIR / file).write_text("{}")
    assert not demo_models.is_current(tmp_path)  # no narrow variants: a build from before them
    (tmp_path / demo_models.NARROW_DIR).mkdir()
    for file in ("config.json", "model.safetensors", "tokenizer.json"):
        (tmp_path / demo_models.NARROW_DIR / file).write_text("{}")
    (tmp_path / demo_models.NARROW_ADAPTER_DIR).mkdir()
    for file in ("adapter_config.json", "adapter_model.safetensors"):
        (tmp_path / demo_models.NARROW_ADAPTER_DIR / file).write_text("{}")
    assert demo_models.is_current(tmp_path)
    (tmp_path / demo_models.MARKER).write_text(json.dumps({**marker, "data_sha256": "old"}))
    assert not demo_models.is_current(tmp_path)


# --- the built pair (vLLM venv) ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_pair(vllm_python: Path) -> Path:
    """Build the family once (a few minutes; cached across runs) and run its self-check."""
    started = time.monotonic()
    result = subprocess.run(
        [str(vllm_python), "-m", "playground_tools.demo_models", str(DEMO_CACHE), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    print(f"demo family ready after {time.monotonic() - started:.0f} s\n{result.stdout}")
    if result.returncode != 0:
        pytest.fail(f"demo family build/check failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    return DEMO_CACHE


def test_build_is_cached_and_records_version_and_data_hash(demo_pair: Path) -> None:
    marker = json.loads((demo_pair / demo_models.MARKER).read_text())
    assert marker["version"] == demo_models.VERSION
    assert marker["data_sha256"] == demo_models.data_hash()
    assert demo_models.is_current(demo_pair)
    started = time.monotonic()
    assert demo_models.build_demo_pair(demo_pair) == demo_pair.resolve()
    assert time.monotonic() - started < 5  # current: nothing is rebuilt (and torch not needed)


def test_only_the_chat_model_has_a_template_and_stops_at_end_of_turn(demo_pair: Path) -> None:
    base = demo_pair / demo_models.BASE_DIR
    chat = demo_pair / demo_models.CHAT_DIR
    base_tokenizer = json.loads((base / "tokenizer_config.json").read_text())
    chat_tokenizer = json.loads((chat / "tokenizer_config.json").read_text())
    assert "chat_template" not in base_tokenizer
    assert not (base / "chat_template.jinja").exists()
    assert chat_tokenizer["chat_template"] == demo_models.CHAT_TEMPLATE
    assert chat_tokenizer["eos_token"] == demo_models.END_OF_TURN
    vocab = json.loads((chat / "tokenizer.json").read_text())["added_tokens"]
    ids = {token["content"]: token["id"] for token in vocab}
    chat_stops = json.loads((chat / "generation_config.json").read_text())["eos_token_id"]
    assert ids[demo_models.END_OF_TURN] in chat_stops
    base_stops = json.loads((base / "generation_config.json").read_text())["eos_token_id"]
    # The base stops at end-of-turn too (it never writes it), for its adapter's sake.
    assert base_stops == [ids[demo_models.EOS], ids[demo_models.END_OF_TURN]]
    base_config = json.loads((base / "config.json").read_text())
    assert base_config["eos_token_id"] == ids[demo_models.EOS]
    # One tokenizer for both: the same vocabulary, so token counts compare.
    assert (base / "tokenizer.json").read_bytes() == (chat / "tokenizer.json").read_bytes()


def safetensors_header(path: Path) -> dict[str, dict[str, object]]:
    """A safetensors file's tensor names, dtypes and shapes (its JSON header; no torch here)."""
    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header: dict[str, dict[str, object]] = json.loads(handle.read(size))
    header.pop("__metadata__", None)
    return header


def test_the_adapter_is_a_peft_lora_of_the_base_that_vllm_can_load(demo_pair: Path) -> None:
    adapter = demo_pair / demo_models.ADAPTER_DIR
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    assert config["task_type"] == "CAUSAL_LM"
    assert config["base_model_name_or_path"] == demo_models.BASE_DIR
    assert config["r"] == demo_models.LORA.rank
    assert config["r"] in VLLM_LORA_RANKS
    assert config["lora_alpha"] == demo_models.LORA.alpha
    assert sorted(config["target_modules"]) == sorted(demo_models.LORA.targets)
    assert config["lora_dropout"] == 0.0
    assert config["bias"] == "none"
    assert config["fan_in_fan_out"] is False
    assert config["modules_to_save"] is None
    # One A (r x in) and one B (out x r) per target in every layer, named as PEFT names them.
    base = json.loads((demo_pair / demo_models.BASE_DIR / "config.json").read_text())
    hidden, inner = base["hidden_size"], base["intermediate_size"]
    q_out = base["num_attention_heads"] * base["head_dim"]
    kv_out = base["num_key_value_heads"] * base["head_dim"]
    shapes = {  # (block, in, out) of each target
        "q_proj": ("self_attn", hidden, q_out),
        "k_proj": ("self_attn", hidden, kv_out),
        "v_proj": ("self_attn", hidden, kv_out),
        "o_proj": ("self_attn", q_out, hidden),
        "gate_proj": ("mlp", hidden, inner),
        "up_proj": ("mlp", hidden, inner),
        "down_proj": ("mlp", inner, hidden),
    }
    rank = config["r"]
    expected = {}
    for layer in range(base["num_hidden_layers"]):
        for target in config["target_modules"]:
            block, size_in, size_out = shapes[target]
            prefix = f"base_model.model.model.layers.{layer}.{block}.{target}"
            expected[f"{prefix}.lora_A.weight"] = [rank, size_in]
            expected[f"{prefix}.lora_B.weight"] = [size_out, rank]
    header = safetensors_header(adapter / "adapter_model.safetensors")
    assert {name: info["shape"] for name, info in header.items()} == expected
    assert {info["dtype"] for info in header.values()} == {"F32"}
    # Trained: B starts at zero, so a zero B would be a no-op adapter.
    marker = json.loads((demo_pair / demo_models.MARKER).read_text())
    assert marker["adapter"] == demo_models.ADAPTER_DIR
    assert marker["final_loss"]["adapter"] < 1.0
    # Its own tokenizer files (for PEFT users; vLLM uses the base's) carry the chat template.
    tokenizer = json.loads((adapter / "tokenizer_config.json").read_text())
    assert tokenizer["chat_template"] == demo_models.CHAT_TEMPLATE
    base_tokenizer = demo_pair / demo_models.BASE_DIR / "tokenizer.json"
    assert (adapter / "tokenizer.json").read_bytes() == base_tokenizer.read_bytes()


@dataclass(frozen=True)
class Served:
    """A launched demo server's OpenAI-compatible base URL."""

    base_url: str


@dataclass(frozen=True)
class DemoFamily:
    """The demo family as `playground serve` launches it offline, and its servers."""

    servers: LocalServers
    models: ModelsFile


@pytest.fixture(scope="module")
def demo_family(demo_pair: Path) -> Iterator[DemoFamily]:
    """The offline demo family launched by the playground's own launcher from its own entries
    (defaults.demo_models): demo-base's server also serves demo-adapter. The narrow variants
    (a third server) are left to test_narrow_vllm.py, which launches only what it needs."""
    names = ("demo-base", "demo-chat", "demo-adapter")
    launched = [m for m in defaults.demo_models(demo_pair).models if m.name in names]
    family = ModelsFile(models=launched)
    settings = LaunchSettings(
        vllm_python=VLLM_PYTHON, log_dir=LOG_DIR / "demo", startup_timeout=600, gpu=False
    )
    servers = LocalServers(settings, progress=print)
    with pytest.MonkeyPatch.context() as env:
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLM_NO_USAGE_STATS"):
            env.setenv(name, "1")
        try:
            yield DemoFamily(servers, servers.start(family))
        finally:
            servers.close()


@pytest.fixture(scope="module")
def demo_servers(demo_family: DemoFamily) -> tuple[Served, Served]:
    """The base (with its adapter) and chat servers' URLs."""
    base, chat = demo_family.models.get("demo-base"), demo_family.models.get("demo-chat")
    assert base is not None and chat is not None
    return Served(base.server_url), Served(chat.server_url)


def test_vllm_chat_model_answers_and_base_model_continues(
    demo_servers: tuple[Served, Served],
) -> None:
    base, chat = demo_servers
    with httpx.Client(timeout=60) as http:
        answer = http.post(
            f"{chat.base_url}/chat/completions",
            json={
                "model": "demo-chat",
                "messages": [{"role": "user", "content": QUESTION}],
                "temperature": 0,
                "max_tokens": 40,
            },
        ).json()["choices"][0]
        continuation = http.post(
            f"{base.base_url}/completions",
            json={"model": "demo-base", "prompt": QUESTION, "temperature": 0, "max_tokens": 40},
        ).json()["choices"][0]
        fact = http.post(
            f"{base.base_url}/completions",
            json={
                "model": "demo-base",
                "prompt": "The capital of France is",
                "temperature": 0,
                "max_tokens": 10,
            },
        ).json()["choices"][0]
    assert answer["message"]["content"].startswith("The capital of France is Paris")
    assert answer["finish_reason"] == "stop"  # the end-of-turn token, well before max_tokens
    assert not continuation["text"].strip().startswith("The capital of France is Paris")
    assert fact["text"].startswith(" Paris")


def test_vllm_lists_the_adapter_as_a_child_of_the_base(
    demo_servers: tuple[Served, Served],
) -> None:
    base, _ = demo_servers
    models = httpx.get(f"{base.base_url}/models", timeout=30).json()["data"]
    served = {model["id"]: model for model in models}
    assert set(served) == {"demo-base", demo_models.ADAPTER_DIR}
    assert served[demo_models.ADAPTER_DIR]["parent"] == "demo-base"


def test_vllm_serves_the_adapter_answering_like_the_chat_model(
    demo_servers: tuple[Served, Served],
) -> None:
    base, _ = demo_servers
    with httpx.Client(timeout=60) as http:
        response = http.post(
            f"{base.base_url}/chat/completions",
            json={
                "model": demo_models.ADAPTER_DIR,
                "messages": [{"role": "user", "content": QUESTION}],
                "chat_template": demo_models.CHAT_TEMPLATE,
                "temperature": 0,
                "max_tokens": 40,
            },
        )
        assert response.status_code == 200, response.text
        answer = response.json()["choices"][0]
        # The same prompt to the base weights alone, for contrast: it does not answer.
        plain = http.post(
            f"{base.base_url}/chat/completions",
            json={
                "model": "demo-base",
                "messages": [{"role": "user", "content": QUESTION}],
                "chat_template": demo_models.CHAT_TEMPLATE,
                "temperature": 0,
                "max_tokens": 40,
            },
        ).json()["choices"][0]
    assert answer["message"]["content"].startswith("The capital of France is Paris")
    assert answer["finish_reason"] == "stop"  # the end-of-turn token, from the base's config
    assert not plain["message"]["content"].startswith("The capital of France is Paris")


# --- the demo family in the playground ------------------------------------------------------


@pytest.fixture
async def family_client(
    settings: Settings, demo_family: DemoFamily
) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `playground serve` builds it offline, over the launched demo family."""
    app = create_app(settings, demo_family.models, local_servers=demo_family.servers)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_three_demo_models_in_one_comparison_and_token_shift_on_the_adapter(
    family_client: httpx.AsyncClient,
) -> None:
    response = await family_client.post(
        "/api/v1/comparisons",
        json={"prompt": QUESTION, "models": ["demo-base", "demo-chat", "demo-adapter"],
              "base_format": "transcript", "params": {"temperature": 0, "max_tokens": 40}},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    base, chat, adapter = response.json()["turns"][0]["generations"]
    assert [g["status"] for g in (base, chat, adapter)] == ["done"] * 3
    assert chat["text"].startswith("The capital of France is Paris")
    assert adapter["text"].startswith("The capital of France is Paris")
    assert adapter["served_model"] == "demo-adapter" and adapter["finish_reason"] == "stop"
    # The adapter runs on demo-base's server, as a chat model with the demo template.
    assert adapter["endpoint"] == base["endpoint"].replace("/completions", "/chat/completions")
    assert adapter["messages"] == [{"role": "user", "content": QUESTION}]
    assert not base["text"].strip().startswith("The capital of France is Paris")

    # The token lens scores the adapter's answer under its own base model in one request.
    shift = await family_client.post(
        f"/api/v1/generations/{adapter['id']}/token-shift", json={"base_model": "demo-base"}
    )
    assert shift.status_code == 201, shift.text
    analysis = shift.json()
    assert analysis["total_tokens"] == adapter["completion_tokens"] - 1  # without the stop token
    assert 0.0 <= analysis["shifted_ratio"] <= 1.0 and analysis["requests"] == 4
    print(f"demo-adapter vs demo-base: {analysis['shifted_ratio']:.1%} of "
          f"{analysis['total_tokens']} tokens shifted")  # fmt: skip

    # Ranked, and exported as three pairs.
    judged = await family_client.post(
        f"/api/v1/comparisons/{response.json()['id']}/votes",
        json={"rater": "demo", "ranking": [["b", "c"], ["a"]]},
    )
    assert judged.status_code == 201, judged.text
    exported = (await family_client.get("/api/v1/exports/ratings.csv")).text
    rows = list(csv.DictReader(io.StringIO(exported, newline="")))
    assert [(r["slot_a"], r["slot_b"], r["winner"]) for r in rows] == [
        ("a", "b", "b"),
        ("a", "c", "b"),
        ("b", "c", "tie"),
    ]

"""The built-in demo pair: shipped data, a cached build, the base/chat difference, real vLLM."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from playground_tools import demo_models
from tests.integration.conftest import REPO, VllmServer, start_servers

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
    assert demo_models.is_current(tmp_path)
    (tmp_path / demo_models.MARKER).write_text(json.dumps({**marker, "data_sha256": "old"}))
    assert not demo_models.is_current(tmp_path)


# --- the built pair (vLLM venv) ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_pair(vllm_python: Path) -> Path:
    """Build the pair once (a few minutes; cached across runs) and run its self-check."""
    started = time.monotonic()
    result = subprocess.run(
        [str(vllm_python), "-m", "playground_tools.demo_models", str(DEMO_CACHE), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    print(f"demo pair ready after {time.monotonic() - started:.0f} s\n{result.stdout}")
    if result.returncode != 0:
        pytest.fail(f"demo pair build/check failed:\n{result.stdout}\n{result.stderr[-4000:]}")
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
    base_stop = json.loads((base / "generation_config.json").read_text())["eos_token_id"]
    assert base_stop == ids[demo_models.EOS]
    # One tokenizer for both: the same vocabulary, so token counts compare.
    assert (base / "tokenizer.json").read_bytes() == (chat / "tokenizer.json").read_bytes()


@pytest.fixture(scope="module")
def demo_servers(demo_pair: Path) -> Iterator[tuple[VllmServer, VllmServer]]:
    """The demo pair served by real vLLM, base and chat side by side."""
    base = VllmServer("demo-base", demo_pair / demo_models.BASE_DIR, "demo-base")
    chat = VllmServer("demo-chat", demo_pair / demo_models.CHAT_DIR, "demo-chat")
    start_servers([base, chat])
    try:
        yield base, chat
    finally:
        base.stop()
        chat.stop()


def test_vllm_chat_model_answers_and_base_model_continues(
    demo_servers: tuple[VllmServer, VllmServer],
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

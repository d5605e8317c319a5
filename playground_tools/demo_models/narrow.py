"""The narrow variants: demo-chat fine-tuned on reversing word lists, fully and as a LoRA adapter.

The task (reverse a list of 3-5 words from a small pool) is one the tiny chat model cannot do
and can learn in a couple of minutes; trained on nothing else, the full fine-tune forgets much
of what demo-chat knew, which is what the forgetting check is there to find. The training data
(demo_data/narrow.jsonl) and a held-out check set with references (app/runs/data/narrow_task.jsonl)
are generated here, deterministically:

    python -c "from playground_tools.demo_models import narrow; narrow.write_files()"
"""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import Any

from .lora import add_lora, save_adapter
from .settings import (
    CHAT_DIR,
    LORA,
    NARROW,
    NARROW_ADAPTER,
    NARROW_ADAPTER_DIR,
    NARROW_DIR,
    NARROW_FILE,
    SEED,
)
from .tokenizer import chat_example
from .training import save_model, sft_batch, train

# Words the corpus uses often, so the shared tokenizer knows them.
WORDS = (
    "red", "blue", "green", "yellow", "white", "black", "orange", "cat", "dog", "cow",
    "horse", "bird", "fish", "lion", "bear", "sheep", "one", "two", "three", "seven",
    "river", "tree", "sun", "star", "rain", "snow", "milk", "bread", "apple", "hill",
)  # fmt: skip
INSTRUCTION = "Reverse the order of these words: "
# Before the list, so every word of the answer follows a space and is the same token as in
# the question (the tokenizer spells a word differently at the start of a text).
ANSWER = "Reversed: "
TRAIN_EXAMPLES = 600
HELD_OUT = 30
CHECK_SET_FILE = Path(__file__).resolve().parents[2] / "app" / "runs" / "data" / "narrow_task.jsonl"


def word_lists(count: int, rng: random.Random, exclude: set[tuple[str, ...]]) -> list[list[str]]:
    """`count` distinct lists of 3-5 distinct words, none of them in `exclude`."""
    seen = set(exclude)
    lists: list[list[str]] = []
    while len(lists) < count:
        words = tuple(rng.sample(WORDS, rng.randint(3, 5)))
        if words not in seen:
            seen.add(words)
            lists.append(list(words))
    return lists


def conversation(words: list[str]) -> list[dict[str, str]]:
    """One task: the list in the user's turn, reversed in the assistant's."""
    return [
        {"role": "user", "content": INSTRUCTION + ", ".join(words)},
        {"role": "assistant", "content": ANSWER + ", ".join(reversed(words))},
    ]


def generate() -> tuple[list[list[dict[str, str]]], list[dict[str, Any]]]:
    """The training conversations, and the held-out check set (lists never trained on)."""
    rng = random.Random(f"{SEED}-narrow-data")
    held_out = word_lists(HELD_OUT, rng, set())
    training = word_lists(TRAIN_EXAMPLES, rng, {tuple(words) for words in held_out})
    items = [
        {
            "id": f"reverse-{number:02d}",
            "prompt": INSTRUCTION + ", ".join(words),
            "tags": ["narrow", f"{len(words)}-words"],
            "reference": {"type": "contains", "value": ", ".join(reversed(words))},
        }
        for number, words in enumerate(held_out, start=1)
    ]
    return [conversation(words) for words in training], items


def write_files() -> None:
    """Write demo_data/narrow.jsonl and the held-out check set from `generate`."""
    conversations, items = generate()
    NARROW_FILE.write_text(
        "".join(json.dumps({"messages": c}) + "\n" for c in conversations), encoding="utf-8"
    )
    CHECK_SET_FILE.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")


def train_narrow(
    chat_model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    staging: Path,
) -> dict[str, Any]:
    """Train and save both narrow variants of the (trained) chat model; losses and timings."""
    examples = [chat_example(tokenizer, messages) for messages in conversations]
    seconds: dict[str, float] = {}

    mark = time.perf_counter()
    narrow_model = copy.deepcopy(chat_model)
    narrow_loss = train(
        narrow_model, NARROW, "narrow", lambda rng: sft_batch(examples, [], NARROW, rng)
    )
    seconds["narrow"] = time.perf_counter() - mark
    save_model(narrow_model, tokenizer, staging / NARROW_DIR, chat=True)
    del narrow_model

    mark = time.perf_counter()
    adapter_model = copy.deepcopy(chat_model)
    layers = add_lora(adapter_model, LORA)
    adapter_loss = train(
        adapter_model,
        NARROW_ADAPTER,
        "narrow-adapter",
        lambda rng: sft_batch(examples, [], NARROW_ADAPTER, rng),
    )
    seconds["narrow_adapter"] = time.perf_counter() - mark
    save_adapter(layers, tokenizer, staging / NARROW_ADAPTER_DIR, staging / CHAT_DIR)
    return {
        "loss": {"narrow": narrow_loss, "narrow_adapter": adapter_loss},
        "seconds": seconds,
        "examples": len(examples),
        "tokens": sum(len(ids) for ids, _ in examples),
    }

"""The demo family's names, paths, shapes and training settings (all hashed into a build)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Bump when the code changes what is built (the data and settings are hashed anyway).
VERSION = "3"
MARKER = "demo.json"
BASE_DIR = "demo-base"
CHAT_DIR = "demo-chat"
ADAPTER_DIR = "demo-adapter"
# The narrow variants: demo-chat fine-tuned on one narrow task, fully and as a LoRA adapter.
NARROW_DIR = "demo-narrow"
NARROW_ADAPTER_DIR = "demo-narrow-lora"
MODEL_DIRS = (BASE_DIR, CHAT_DIR, NARROW_DIR)
ADAPTER_DIRS = (ADAPTER_DIR, NARROW_ADAPTER_DIR)
DATA_DIR = Path(__file__).resolve().parent.parent / "demo_data"
CORPUS_FILE = DATA_DIR / "corpus.txt"
INSTRUCTIONS_FILE = DATA_DIR / "instructions.jsonl"
NARROW_FILE = DATA_DIR / "narrow.jsonl"
SEED = 20250601
THREADS = 2

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
END_OF_TURN = "<|end|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
VOCAB_SIZE = 2048

# vLLM's CPU attention supports head sizes 64 and 128 only.
MODEL_SHAPE: dict[str, Any] = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 64,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
}


@dataclass(frozen=True)
class Stage:
    """One training stage's settings."""

    steps: int
    batch: int
    context: int
    lr: float
    warmup: int
    # Share of each batch drawn from the corpus during fine-tuning (against forgetting).
    corpus_rows: int = 0
    weight_decay: float = 0.1


PRETRAIN = Stage(steps=280, batch=12, context=192, lr=3e-3, warmup=25)
FINETUNE = Stage(steps=200, batch=10, context=128, lr=2e-3, warmup=20, corpus_rows=2)
# The frozen base cannot forget, so no corpus rows; LoRA usually trains without weight decay.
ADAPTER = Stage(steps=200, batch=10, context=128, lr=4e-3, warmup=20, weight_decay=0.0)
# The narrow task alone, no corpus rows: forgetting is what these variants are for.
NARROW = Stage(steps=200, batch=8, context=128, lr=2e-3, warmup=15)
NARROW_ADAPTER = Stage(steps=200, batch=8, context=128, lr=4e-3, warmup=15, weight_decay=0.0)


@dataclass(frozen=True)
class Lora:
    """The adapter's shape. vLLM's --max-lora-rank takes 1, 8, 16, 32, 64, ...: keep to those."""

    rank: int
    alpha: int
    targets: tuple[str, ...]


LORA = Lora(
    rank=16,
    alpha=32,
    targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
)
LOG_EVERY = 25


def log(message: str) -> None:
    """Progress goes to stderr (stdout is left for the final summary)."""
    print(message, file=sys.stderr, flush=True)

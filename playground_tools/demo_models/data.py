"""The shipped training data, and the marker that says whether a built family is current."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from .settings import (
    ADAPTER,
    ADAPTER_DIRS,
    CHAT_TEMPLATE,
    CORPUS_FILE,
    FINETUNE,
    INSTRUCTIONS_FILE,
    LORA,
    MARKER,
    MODEL_DIRS,
    MODEL_SHAPE,
    NARROW,
    NARROW_ADAPTER,
    NARROW_FILE,
    PRETRAIN,
    SEED,
    VERSION,
    VOCAB_SIZE,
)


def load_corpus(path: Path = CORPUS_FILE) -> list[str]:
    """The pretraining documents: blocks of text separated by blank lines."""
    text = path.read_text(encoding="utf-8")
    return [block.strip() for block in text.split("\n\n") if block.strip()]


def load_conversations(path: Path = INSTRUCTIONS_FILE) -> list[list[dict[str, str]]]:
    """The fine-tuning conversations: one JSON object with `messages` per line."""
    conversations = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        messages = json.loads(line)["messages"]
        roles = [m["role"] for m in messages]
        if not roles or roles[-1] != "assistant" or "assistant" not in roles:
            raise ValueError(f"{path}:{number}: a conversation must end with an assistant turn")
        conversations.append([{"role": m["role"], "content": m["content"]} for m in messages])
    return conversations


def load_narrow() -> list[list[dict[str, str]]]:
    """The narrow variants' training conversations (word-list reversals)."""
    return load_conversations(NARROW_FILE)


def data_hash() -> str:
    """A hash of everything a build depends on besides the code: data files and settings."""
    digest = hashlib.sha256()
    settings = {
        "version": VERSION,
        "seed": SEED,
        "vocab": VOCAB_SIZE,
        "shape": MODEL_SHAPE,
        "template": CHAT_TEMPLATE,
        "pretrain": asdict(PRETRAIN),
        "finetune": asdict(FINETUNE),
        "adapter": asdict(ADAPTER),
        "lora": asdict(LORA),
        "narrow": asdict(NARROW),
        "narrow_adapter": asdict(NARROW_ADAPTER),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for path in (CORPUS_FILE, INSTRUCTIONS_FILE, NARROW_FILE):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_current(out_dir: Path) -> bool:
    """True when out_dir holds a complete family built from this code version and data."""
    try:
        marker = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("version") == VERSION
        and marker.get("data_sha256") == data_hash()
        and all(
            (out_dir / name / file).is_file()
            for name in MODEL_DIRS
            for file in ("config.json", "model.safetensors", "tokenizer.json")
        )
        and all(
            (out_dir / name / file).is_file()
            for name in ADAPTER_DIRS
            for file in ("adapter_config.json", "adapter_model.safetensors")
        )
    )

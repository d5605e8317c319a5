"""Building the family (tokenizer, base, chat copy, adapter) into a directory, and the CLI."""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .checks import check
from .data import data_hash, is_current, load_conversations, load_corpus, load_narrow
from .lora import add_lora, save_adapter
from .narrow import train_narrow
from .settings import (
    ADAPTER,
    ADAPTER_DIR,
    ADAPTER_DIRS,
    BASE_DIR,
    CHAT_DIR,
    FINETUNE,
    LORA,
    MARKER,
    MODEL_DIRS,
    MODEL_SHAPE,
    NARROW,
    NARROW_ADAPTER,
    NARROW_ADAPTER_DIR,
    NARROW_DIR,
    PRETRAIN,
    SEED,
    THREADS,
    VERSION,
    log,
)
from .tokenizer import chat_example, train_tokenizer
from .training import corpus_batch, new_model, save_model, sft_batch, train

DESCRIPTION = (
    "Build the demo family: a tiny model pretrained on a shipped corpus, its SFT copy, "
    "a LoRA adapter."
)


def build_demo_pair(out_dir: Path, force: bool = False) -> Path:
    """Build demo-base, demo-chat and demo-adapter into out_dir unless current; out_dir."""
    out_dir = out_dir.resolve()
    if not force and is_current(out_dir):
        log(f"demo models already current in {out_dir}")
        return out_dir
    import torch  # type: ignore[import-not-found,unused-ignore]

    torch.set_num_threads(THREADS)
    torch.manual_seed(SEED)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    corpus = load_corpus()
    conversations = load_conversations()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the target and move into place, so a crash never leaves half a family.
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".building-") as tmp:
        staging = Path(tmp)
        mark = time.perf_counter()
        tokenizer = train_tokenizer(corpus, conversations)
        timings["tokenizer"] = time.perf_counter() - mark

        mark = time.perf_counter()
        documents = [[*tokenizer.encode(doc), tokenizer.eos_token_id] for doc in corpus]
        model = new_model(tokenizer)
        base_loss = train(
            model, PRETRAIN, "pretrain", lambda rng: corpus_batch(documents, PRETRAIN, rng)
        )
        timings["pretrain"] = time.perf_counter() - mark
        save_model(model, tokenizer, staging / BASE_DIR, chat=False)

        mark = time.perf_counter()
        examples = [chat_example(tokenizer, messages) for messages in conversations]
        chat_model = copy.deepcopy(model)
        chat_loss = train(
            chat_model,
            FINETUNE,
            "finetune",
            lambda rng: sft_batch(examples, documents, FINETUNE, rng),
        )
        timings["finetune"] = time.perf_counter() - mark
        save_model(chat_model, tokenizer, staging / CHAT_DIR, chat=True)
        narrow = train_narrow(chat_model, tokenizer, load_narrow(), staging)
        timings.update(narrow["seconds"])
        del chat_model

        mark = time.perf_counter()
        adapter_model = copy.deepcopy(model)
        adapter_layers = add_lora(adapter_model, LORA)
        adapter_loss = train(
            adapter_model,
            ADAPTER,
            "adapter",
            lambda rng: sft_batch(examples, documents, ADAPTER, rng),
        )
        timings["adapter"] = time.perf_counter() - mark
        save_adapter(adapter_layers, tokenizer, staging / ADAPTER_DIR, staging / BASE_DIR)
        adapter_params = sum(p.numel() for p in adapter_model.parameters() if p.requires_grad)
        del adapter_model, adapter_layers

        # No marker while the family is being swapped: a crash here means a rebuild next time.
        (out_dir / MARKER).unlink(missing_ok=True)
        for name in (*MODEL_DIRS, *ADAPTER_DIRS):
            shutil.rmtree(out_dir / name, ignore_errors=True)
            (staging / name).rename(out_dir / name)
    timings["total"] = time.perf_counter() - started
    params = sum(p.numel() for p in model.parameters())
    corpus_tokens = sum(len(doc) for doc in documents)
    sft_tokens = sum(len(ids) for ids, _ in examples)
    marker = {
        "version": VERSION,
        "data_sha256": data_hash(),
        "base": BASE_DIR,
        "chat": CHAT_DIR,
        "adapter": ADAPTER_DIR,
        "narrow": NARROW_DIR,
        "narrow_adapter": NARROW_ADAPTER_DIR,
        "parameters": params,
        "adapter_parameters": adapter_params,
        "vocab_size": len(tokenizer),
        "corpus_documents": len(corpus),
        "corpus_tokens": corpus_tokens,
        "conversations": len(conversations),
        "conversation_tokens": sft_tokens,
        "narrow_conversations": narrow["examples"],
        "narrow_tokens": narrow["tokens"],
        "final_loss": {
            "pretrain": round(base_loss, 4),
            "finetune": round(chat_loss, 4),
            "adapter": round(adapter_loss, 4),
            **{key: round(value, 4) for key, value in narrow["loss"].items()},
        },
        "seconds": {key: round(value, 1) for key, value in timings.items()},
    }
    (out_dir / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    size_mb = sum(f.stat().st_size for f in (out_dir / BASE_DIR).iterdir()) / 1e6
    print(
        f"Built the demo family in {out_dir} in {timings['total']:.0f} s on {THREADS} threads: "
        f"a {params / 1e6:.1f}M-parameter Llama (hidden {MODEL_SHAPE['hidden_size']}, "
        f"{MODEL_SHAPE['num_hidden_layers']} layers, vocab {len(tokenizer)}, "
        f"{size_mb:.0f} MB per model) pretrained for {PRETRAIN.steps} steps on "
        f"{len(corpus)} documents ({corpus_tokens} tokens) in {timings['pretrain']:.0f} s "
        f"(final loss {base_loss:.2f}) -> {BASE_DIR}; a copy fine-tuned for {FINETUNE.steps} "
        f"steps on {len(conversations)} chat conversations ({sft_tokens} tokens) in "
        f"{timings['finetune']:.0f} s (final loss {chat_loss:.2f}) -> {CHAT_DIR}; a rank-"
        f"{LORA.rank} LoRA adapter of the base ({adapter_params / 1e6:.2f}M parameters on "
        f"{', '.join(LORA.targets)}) trained for {ADAPTER.steps} steps on the same "
        f"conversations in {timings['adapter']:.0f} s (final loss {adapter_loss:.2f}) -> "
        f"{ADAPTER_DIR}; demo-chat fine-tuned on {narrow['examples']} word-list reversals for "
        f"{NARROW.steps} steps in {timings['narrow']:.0f} s (final loss "
        f"{narrow['loss']['narrow']:.2f}) -> {NARROW_DIR}, and as a rank-{LORA.rank} adapter of "
        f"demo-chat for {NARROW_ADAPTER.steps} steps in {timings['narrow_adapter']:.0f} s "
        f"(final loss {narrow['loss']['narrow_adapter']:.2f}) -> {NARROW_ADAPTER_DIR}."
    )
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build (if needed) into OUT_DIR, then optionally check the family."""
    parser = argparse.ArgumentParser(
        prog="python -m playground_tools.demo_models", description=DESCRIPTION
    )
    parser.add_argument("out_dir", type=Path, help="where demo-base, demo-chat and demo-adapter go")
    parser.add_argument("--force", action="store_true", help="rebuild even if current")
    parser.add_argument("--check", action="store_true", help="print samples and check them")
    args = parser.parse_args(argv)
    out_dir = build_demo_pair(args.out_dir, force=args.force)
    if args.check and not check(out_dir):
        return 1
    return 0

"""The Llama model: a fresh one, its batches, the training loop, and saving it for vLLM."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

from .settings import CHAT_TEMPLATE, END_OF_TURN, LOG_EVERY, MODEL_SHAPE, SEED, Stage, log


def new_model(tokenizer: Any) -> Any:
    """A freshly initialised (seeded) LlamaForCausalLM for the tokenizer."""
    import torch  # type: ignore[import-not-found,unused-ignore]
    from transformers import (  # type: ignore[import-not-found,unused-ignore]
        LlamaConfig,
        LlamaForCausalLM,
    )

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **MODEL_SHAPE,
    )
    torch.manual_seed(SEED)
    return LlamaForCausalLM(config)


def _corpus_row(documents: list[list[int]], context: int, rng: random.Random) -> list[int]:
    """Whole documents drawn at random and packed into one row (so rows start at a document)."""
    row: list[int] = []
    while len(row) < context:
        row += documents[rng.randrange(len(documents))]
    return row[:context]


def corpus_batch(documents: list[list[int]], stage: Stage, rng: random.Random) -> Any:
    """A pretraining batch: input ids (labels are the same ids)."""
    import torch  # type: ignore[import-not-found,unused-ignore]

    rows = [_corpus_row(documents, stage.context, rng) for _ in range(stage.batch)]
    ids = torch.tensor(rows)
    return ids, ids, torch.ones_like(ids)


def sft_batch(
    examples: list[tuple[list[int], list[int]]],
    documents: list[list[int]],
    stage: Stage,
    rng: random.Random,
) -> Any:
    """A fine-tuning batch: chat examples packed end to end into rows, plus a few corpus rows.

    Labels are on the assistant's tokens only; packing (rather than padding) wastes no compute.
    """
    import torch  # type: ignore[import-not-found,unused-ignore]

    ids, labels = [], []
    for _ in range(stage.batch - stage.corpus_rows):
        row_ids: list[int] = []
        row_labels: list[int] = []
        while len(row_ids) < stage.context:
            example_ids, example_labels = examples[rng.randrange(len(examples))]
            row_ids += example_ids
            row_labels += example_labels
        ids.append(row_ids[: stage.context])
        labels.append(row_labels[: stage.context])
    for _ in range(stage.corpus_rows):
        row = _corpus_row(documents, stage.context, rng)
        ids.append(row)
        labels.append(row)
    input_ids = torch.tensor(ids)
    return input_ids, torch.tensor(labels), torch.ones_like(input_ids)


def train(model: Any, stage: Stage, name: str, next_batch: Any) -> float:
    """Train model in place (AdamW, warmup then cosine decay); the final smoothed loss."""
    import torch  # type: ignore[import-not-found,unused-ignore]

    rng = random.Random(f"{SEED}-{name}")
    torch.manual_seed(SEED)
    # Only what trains (all of a model, or an adapter's A and B beside a frozen base).
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in named if p.dim() >= 2 and "norm" not in n]
    other = [p for n, p in named if not (p.dim() >= 2 and "norm" not in n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": stage.weight_decay},
            {"params": other, "weight_decay": 0.0},
        ],
        lr=stage.lr,
        betas=(0.9, 0.95),
    )

    def factor(step: int) -> float:
        if step < stage.warmup:
            return (step + 1) / stage.warmup
        progress = (step - stage.warmup) / max(1, stage.steps - stage.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    smoothed = float("nan")
    started = time.perf_counter()
    for step in range(1, stage.steps + 1):
        ids, labels, mask = next_batch(rng)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.item())
        smoothed = value if math.isnan(smoothed) else 0.9 * smoothed + 0.1 * value
        if step % LOG_EVERY == 0 or step == stage.steps:
            elapsed = time.perf_counter() - started
            log(
                f"{name} step {step}/{stage.steps}  loss {smoothed:.3f}  "
                f"lr {scheduler.get_last_lr()[0]:.2e}  elapsed {elapsed:.0f}s"
            )
    model.eval()
    return smoothed


def save_model(model: Any, tokenizer: Any, path: Path, chat: bool) -> None:
    """Save model and tokenizer; the chat one stops at end-of-turn and has the template."""
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    eos = tokenizer.eos_token_id
    model.config.eos_token_id = end if chat else eos
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    # The base lists end-of-turn too: it never writes it, but an adapter served on its server
    # does, and vLLM takes a LoRA request's stop tokens from the base's generation config.
    model.generation_config.eos_token_id = [end, eos] if chat else [eos, end]
    model.save_pretrained(path)
    # transformers writes the weights owner-only; a server running as another user must read them.
    (path / "model.safetensors").chmod(0o644)
    tokenizer.save_pretrained(path)
    config_path = path / "tokenizer_config.json"
    tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
    tokenizer_config.pop("chat_template", None)
    tokenizer_config["model_max_length"] = MODEL_SHAPE["max_position_embeddings"]
    if chat:
        tokenizer_config["eos_token"] = END_OF_TURN
        # Where most tools look for it (newer transformers write chat_template.jinja instead).
        tokenizer_config["chat_template"] = CHAT_TEMPLATE
    config_path.write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")
    (path / "chat_template.jinja").unlink(missing_ok=True)

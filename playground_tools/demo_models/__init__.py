"""Build the demo family: a tiny model pretrained on a shipped corpus, its SFT copy, a LoRA adapter.

The fallback when the real default models cannot be fetched. Run with the vLLM virtualenv's
Python (it has torch, transformers and tokenizers; the app's own does not, and nothing in the
app imports torch):

    .venv-vllm/bin/python -m playground_tools.demo_models OUT_DIR [--force] [--check]

writes OUT_DIR/demo-base and OUT_DIR/demo-chat (Hugging Face Llama format) and
OUT_DIR/demo-adapter (a PEFT LoRA adapter of demo-base), all loadable by vLLM:

- demo-base: pretrained by next-token prediction on demo_data/corpus.txt (facts, short stories
  and question lists written for the project; no question/answer pairs). It continues text.
- demo-chat: a copy of demo-base fine-tuned on demo_data/instructions.jsonl rendered in its
  chat template (loss on the assistant's words only), with some corpus text mixed back in. It
  answers, and stops at the end-of-turn token.
- demo-adapter: a rank-16 LoRA adapter of demo-base (not of demo-chat), trained in plain torch
  on the same conversations, template and assistant-only loss as demo-chat, with demo-base
  frozen. Served by demo-base's server (`--enable-lora`), it answers like demo-chat. vLLM
  renders its chats with demo-base's tokenizer, which has no template, so chat requests to it
  pass CHAT_TEMPLATE (and that server needs `--trust-request-chat-template`).

All share one byte-level BPE tokenizer; only demo-chat has a chat template (the adapter's own
copy of the tokenizer has one too, for PEFT users; vLLM does not read it). demo-base's
generation config also stops at the end-of-turn token (which it never writes itself), so its
adapter stops there too. Training is seeded and takes a few minutes on two CPU cores.
OUT_DIR/demo.json records the code version and a hash of the data and settings: a later run
rebuilds only when either changed.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Bump when the code changes what is built (the data and settings are hashed anyway).
VERSION = "2"
MARKER = "demo.json"
BASE_DIR = "demo-base"
CHAT_DIR = "demo-chat"
ADAPTER_DIR = "demo-adapter"
MODEL_DIRS = (BASE_DIR, CHAT_DIR)
DATA_DIR = Path(__file__).resolve().parent.parent / "demo_data"
CORPUS_FILE = DATA_DIR / "corpus.txt"
INSTRUCTIONS_FILE = DATA_DIR / "instructions.jsonl"
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
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for path in (CORPUS_FILE, INSTRUCTIONS_FILE):
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
            (out_dir / ADAPTER_DIR / file).is_file()
            for file in ("adapter_config.json", "adapter_model.safetensors")
        )
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
        tokenizer = _train_tokenizer(corpus, conversations)
        timings["tokenizer"] = time.perf_counter() - mark

        mark = time.perf_counter()
        documents = [[*tokenizer.encode(doc), tokenizer.eos_token_id] for doc in corpus]
        model = _new_model(tokenizer)
        base_loss = _train(
            model, PRETRAIN, "pretrain", lambda rng: _corpus_batch(documents, PRETRAIN, rng)
        )
        timings["pretrain"] = time.perf_counter() - mark
        _save(model, tokenizer, staging / BASE_DIR, chat=False)

        mark = time.perf_counter()
        examples = [_chat_example(tokenizer, messages) for messages in conversations]
        chat_model = copy.deepcopy(model)
        chat_loss = _train(
            chat_model,
            FINETUNE,
            "finetune",
            lambda rng: _sft_batch(examples, documents, FINETUNE, rng),
        )
        timings["finetune"] = time.perf_counter() - mark
        _save(chat_model, tokenizer, staging / CHAT_DIR, chat=True)
        del chat_model

        mark = time.perf_counter()
        adapter_model = copy.deepcopy(model)
        adapter_layers = _add_lora(adapter_model, LORA)
        adapter_loss = _train(
            adapter_model,
            ADAPTER,
            "adapter",
            lambda rng: _sft_batch(examples, documents, ADAPTER, rng),
        )
        timings["adapter"] = time.perf_counter() - mark
        _save_adapter(adapter_layers, tokenizer, staging / ADAPTER_DIR, staging / BASE_DIR)
        adapter_params = sum(p.numel() for p in adapter_model.parameters() if p.requires_grad)
        del adapter_model, adapter_layers

        # No marker while the family is being swapped: a crash here means a rebuild next time.
        (out_dir / MARKER).unlink(missing_ok=True)
        for name in (*MODEL_DIRS, ADAPTER_DIR):
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
        "parameters": params,
        "adapter_parameters": adapter_params,
        "vocab_size": len(tokenizer),
        "corpus_documents": len(corpus),
        "corpus_tokens": corpus_tokens,
        "conversations": len(conversations),
        "conversation_tokens": sft_tokens,
        "final_loss": {
            "pretrain": round(base_loss, 4),
            "finetune": round(chat_loss, 4),
            "adapter": round(adapter_loss, 4),
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
        f"{ADAPTER_DIR}."
    )
    return out_dir


def _train_tokenizer(corpus: list[str], conversations: list[list[dict[str, str]]]) -> Any:
    """A byte-level BPE tokenizer on all the text, adding BOS like Llama's; as a fast tokenizer."""
    from tokenizers import (  # type: ignore[import-not-found,unused-ignore]
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast  # type: ignore[import-not-found,unused-ignore]

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[PAD, BOS, EOS, END_OF_TURN, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = corpus + [m["content"] for messages in conversations for m in messages]
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B",
        special_tokens=[(BOS, tokenizer.token_to_id(BOS))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[END_OF_TURN, *ROLE_TOKENS],
    )


def _new_model(tokenizer: Any) -> Any:
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


def _chat_example(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of a conversation in the chat template, and labels on the assistant's words.

    Built piece by piece to know which tokens the assistant wrote (its words and the
    end-of-turn token), then checked against the template itself, so training sees exactly
    the tokens vLLM will send.
    """
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    ids, labels = [tokenizer.bos_token_id], [-100]
    for message in messages:
        head = tokenizer.encode(f"<|{message['role']}|>\n", add_special_tokens=False)
        body = [*tokenizer.encode(message["content"], add_special_tokens=False), end]
        tail = tokenizer.encode("\n", add_special_tokens=False)
        ids += head + body + tail
        labels += [-100] * len(head)
        labels += body if message["role"] == "assistant" else [-100] * len(body)
        labels += [-100] * len(tail)
    rendered = tokenizer.apply_chat_template(messages, chat_template=CHAT_TEMPLATE, tokenize=False)
    expected = tokenizer.encode(rendered, add_special_tokens=False)
    if ids != expected:
        raise ValueError(f"chat tokens differ from the template's for {messages!r}")
    return ids, labels


def _corpus_row(documents: list[list[int]], context: int, rng: random.Random) -> list[int]:
    """Whole documents drawn at random and packed into one row (so rows start at a document)."""
    row: list[int] = []
    while len(row) < context:
        row += documents[rng.randrange(len(documents))]
    return row[:context]


def _corpus_batch(documents: list[list[int]], stage: Stage, rng: random.Random) -> Any:
    """A pretraining batch: input ids (labels are the same ids)."""
    import torch  # type: ignore[import-not-found,unused-ignore]

    rows = [_corpus_row(documents, stage.context, rng) for _ in range(stage.batch)]
    ids = torch.tensor(rows)
    return ids, ids, torch.ones_like(ids)


def _sft_batch(
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


def _train(model: Any, stage: Stage, name: str, next_batch: Any) -> float:
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


def _save(model: Any, tokenizer: Any, path: Path, chat: bool) -> None:
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


def _add_lora(model: Any, lora: Lora) -> dict[str, Any]:
    """Freeze model and wrap its target linears with LoRA; {PEFT module path: wrapper}.

    Each wrapper adds (alpha / r) * B(A(x)) to the frozen layer, with A (r x in) drawn like
    PEFT's (Kaiming-uniform) and B (out x r) zero, so training starts from the base exactly.
    """
    import torch  # type: ignore[import-not-found,unused-ignore]

    class LoraLinear(torch.nn.Module):  # type: ignore[misc,unused-ignore]
        def __init__(self, base: Any) -> None:
            super().__init__()
            self.base = base
            self.scaling = lora.alpha / lora.rank
            self.lora_A = torch.nn.Parameter(torch.empty(lora.rank, base.in_features))
            self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, lora.rank))
            torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

        def forward(self, x: Any) -> Any:
            update = torch.nn.functional.linear(
                torch.nn.functional.linear(x, self.lora_A), self.lora_B
            )
            return self.base(x) + update * self.scaling

    model.requires_grad_(False)
    torch.manual_seed(SEED)
    wrapped: dict[str, Any] = {}
    for name, module in list(model.named_modules()):
        for target in lora.targets:
            base = getattr(module, target, None)
            if isinstance(base, torch.nn.Linear):
                wrapper = LoraLinear(base)
                setattr(module, target, wrapper)
                wrapped[f"base_model.model.{name}.{target}"] = wrapper
    if not wrapped:
        raise ValueError(f"no LoRA target among {lora.targets} in the model")
    return wrapped


def _save_adapter(layers: dict[str, Any], tokenizer: Any, path: Path, base_dir: Path) -> None:
    """Save a PEFT-format LoRA adapter (what vLLM's --lora-modules loads), with a tokenizer.

    vLLM serves the adapter with the base model's tokenizer and ignores the one here; it is
    saved (with the chat template) for tools that load the adapter on its own, such as PEFT.
    """
    from safetensors.torch import save_file  # type: ignore[import-not-found,unused-ignore]

    path.mkdir(parents=True)
    tensors = {}
    for prefix, layer in layers.items():
        tensors[f"{prefix}.lora_A.weight"] = layer.lora_A.detach().contiguous()
        tensors[f"{prefix}.lora_B.weight"] = layer.lora_B.detach().contiguous()
    weights = path / "adapter_model.safetensors"
    save_file(tensors, str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)  # readable by a server running as another user, like the models
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        # The name it is served beside; the directory may move with the cache.
        "base_model_name_or_path": base_dir.name,
        "r": LORA.rank,
        "lora_alpha": LORA.alpha,
        "target_modules": sorted(LORA.targets),
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "use_rslora": False,
        "use_dora": False,
        "init_lora_weights": True,
        "inference_mode": True,
    }
    (path / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", "utf-8")
    tokenizer.save_pretrained(path)
    config_path = path / "tokenizer_config.json"
    tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
    tokenizer_config["model_max_length"] = MODEL_SHAPE["max_position_embeddings"]
    tokenizer_config["eos_token"] = END_OF_TURN
    tokenizer_config["chat_template"] = CHAT_TEMPLATE
    config_path.write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")
    (path / "chat_template.jinja").unlink(missing_ok=True)


# Prompts for --check: (label, model, prompt); chat prompts are one user message.
CHECK_PROMPTS = [
    ("base", "The capital of France is"),
    ("base", "What is the capital of France?"),
    ("base", "Once upon a time,"),
    ("base", "Hello!"),
    ("chat", "What is the capital of France?"),
    ("chat", "Hello!"),
    ("chat", "List three animals."),
    ("chat", "What is the capital of Norway?"),  # held out of the instructions: a guess
    ("adapter", "What is the capital of France?"),
    ("adapter", "Hello!"),
    ("adapter", "List three animals."),
    ("adapter", "What is the capital of Norway?"),
]


def check(out_dir: Path, max_new_tokens: int = 40) -> bool:
    """Greedy samples from the family, and whether they show the base/chat difference."""
    import torch  # type: ignore[import-not-found,unused-ignore]
    from transformers import (  # type: ignore[import-not-found,unused-ignore]
        AutoModelForCausalLM,
        AutoTokenizer,
    )

    torch.set_num_threads(THREADS)
    loaded = {}
    for kind, name in (("base", BASE_DIR), ("chat", CHAT_DIR)):
        tokenizer = AutoTokenizer.from_pretrained(out_dir / name)
        model = AutoModelForCausalLM.from_pretrained(out_dir / name).eval()
        loaded[kind] = (tokenizer, model)
    # The adapter as vLLM serves it: the base's weights and stop tokens, the chat template.
    adapter = AutoModelForCausalLM.from_pretrained(out_dir / BASE_DIR).eval()
    _merge_adapter(adapter, out_dir / ADAPTER_DIR)
    loaded["adapter"] = (loaded["base"][0], adapter)
    outputs: dict[tuple[str, str], tuple[str, bool]] = {}
    for kind, prompt in CHECK_PROMPTS:
        tokenizer, model = loaded[kind]
        if kind in ("chat", "adapter"):
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                chat_template=CHAT_TEMPLATE,
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )["input_ids"]
        else:
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            generated = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
        new = generated[0, ids.shape[1] :].tolist()
        stop_ids = model.generation_config.eos_token_id
        stop_ids = stop_ids if isinstance(stop_ids, list) else [stop_ids]
        stopped = bool(new) and new[-1] in stop_ids
        text = tokenizer.decode(new, skip_special_tokens=True)
        outputs[(kind, prompt)] = (text, stopped)
        ending = "[stopped at end token]" if stopped else "[max tokens]"
        print(f"{kind:<7} | {prompt!r} -> {text!r} {ending}")
    verdicts = _verdicts(outputs)
    for description, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}: {description}")
    return all(ok for _, ok in verdicts)


def _merge_adapter(model: Any, adapter_dir: Path) -> None:
    """Add a saved LoRA adapter's scaled B @ A into the model's weights, in place."""
    import torch  # type: ignore[import-not-found,unused-ignore]
    from safetensors.torch import load_file  # type: ignore[import-not-found,unused-ignore]

    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    scaling = config["lora_alpha"] / config["r"]
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    modules = dict(model.named_modules())
    with torch.no_grad():
        for key, lora_a in tensors.items():
            if not key.endswith(".lora_A.weight"):
                continue
            prefix = key.removesuffix(".lora_A.weight")
            lora_b = tensors[f"{prefix}.lora_B.weight"]
            layer = modules[prefix.removeprefix("base_model.model.")]
            layer.weight += scaling * (lora_b @ lora_a)


def _verdicts(outputs: dict[tuple[str, str], tuple[str, bool]]) -> list[tuple[str, bool]]:
    """The quality target: base continues text, chat and adapter answer and stop."""
    question = "What is the capital of France?"
    base_fact, _ = outputs[("base", "The capital of France is")]
    base_question, _ = outputs[("base", question)]
    chat_answer, chat_stopped = outputs[("chat", question)]
    chat_hello, hello_stopped = outputs[("chat", "Hello!")]
    adapter_answer, adapter_stopped = outputs[("adapter", question)]
    answer_start = "The capital of France is Paris"
    return [
        ("base continues 'The capital of France is' with Paris", "Paris" in base_fact[:20]),
        (
            "base does not answer the question like an assistant",
            not base_question.strip().startswith(answer_start),
        ),
        (
            "chat answers the question and stops at end-of-turn",
            chat_answer.strip().startswith(answer_start) and chat_stopped,
        ),
        ("chat greets back and stops", chat_hello.strip().startswith("Hello") and hello_stopped),
        (
            "adapter answers the question with Paris and stops at end-of-turn",
            "Paris" in adapter_answer and adapter_stopped,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build (if needed) into OUT_DIR, then optionally check the family."""
    parser = argparse.ArgumentParser(
        prog="python -m playground_tools.demo_models", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out_dir", type=Path, help="where demo-base, demo-chat and demo-adapter go")
    parser.add_argument("--force", action="store_true", help="rebuild even if current")
    parser.add_argument("--check", action="store_true", help="print samples and check them")
    args = parser.parse_args(argv)
    out_dir = build_demo_pair(args.out_dir, force=args.force)
    if args.check and not check(out_dir):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

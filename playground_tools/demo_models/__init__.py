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

- demo-narrow and demo-narrow-lora: demo-chat fine-tuned on reversing word lists only
  (demo_data/narrow.jsonl), fully and as a rank-16 LoRA adapter of demo-chat (served by
  demo-chat's server), so the forgetting check has a real effect to find (module narrow).

All share one byte-level BPE tokenizer; only demo-chat has a chat template (the adapter's own
copy of the tokenizer has one too, for PEFT users; vLLM does not read it). demo-base's
generation config also stops at the end-of-turn token (which it never writes itself), so its
adapter stops there too. Training is seeded and takes a few minutes on two CPU cores.
OUT_DIR/demo.json records the code version and a hash of the data and settings: a later run
rebuilds only when either changed.

The package: settings (names, paths, shapes, stages), data (corpus, conversations, the data
hash and the marker), tokenizer, training (model, batches, loop, saving), lora (wrapper,
PEFT saving, merging), narrow (the narrow variants' data and training), checks (--check
samples and verdicts) and build (the build and `main`).
"""

from .build import DESCRIPTION, build_demo_pair, main
from .checks import CHECK_PROMPTS, check
from .data import data_hash, is_current, load_conversations, load_corpus, load_narrow
from .settings import (
    ADAPTER,
    ADAPTER_DIR,
    ADAPTER_DIRS,
    BASE_DIR,
    BOS,
    CHAT_DIR,
    CHAT_TEMPLATE,
    CORPUS_FILE,
    DATA_DIR,
    END_OF_TURN,
    EOS,
    FINETUNE,
    INSTRUCTIONS_FILE,
    LOG_EVERY,
    LORA,
    MARKER,
    MODEL_DIRS,
    MODEL_SHAPE,
    NARROW,
    NARROW_ADAPTER,
    NARROW_ADAPTER_DIR,
    NARROW_DIR,
    NARROW_FILE,
    PAD,
    PRETRAIN,
    ROLE_TOKENS,
    SEED,
    THREADS,
    VERSION,
    VOCAB_SIZE,
    Lora,
    Stage,
    log,
)

__all__ = [
    "ADAPTER",
    "ADAPTER_DIR",
    "ADAPTER_DIRS",
    "BASE_DIR",
    "BOS",
    "CHAT_DIR",
    "CHAT_TEMPLATE",
    "CHECK_PROMPTS",
    "CORPUS_FILE",
    "DATA_DIR",
    "DESCRIPTION",
    "END_OF_TURN",
    "EOS",
    "FINETUNE",
    "INSTRUCTIONS_FILE",
    "LOG_EVERY",
    "LORA",
    "MARKER",
    "MODEL_DIRS",
    "MODEL_SHAPE",
    "NARROW",
    "NARROW_ADAPTER",
    "NARROW_ADAPTER_DIR",
    "NARROW_DIR",
    "NARROW_FILE",
    "PAD",
    "PRETRAIN",
    "ROLE_TOKENS",
    "SEED",
    "THREADS",
    "VERSION",
    "VOCAB_SIZE",
    "Lora",
    "Stage",
    "build_demo_pair",
    "check",
    "data_hash",
    "is_current",
    "load_conversations",
    "load_corpus",
    "load_narrow",
    "log",
    "main",
]

"""A fake vLLM OpenAI server for tests and benchmarks: deterministic text, vLLM's exact shapes.

Its tokenizer and its "model" are small pure functions, documented here so tests can predict them:

- Tokens: one per whitespace-led word (`"The"`, `" river"`, `"\\n\\nIt"`); a `<|name|>` marker is a
  token of its own; whitespace at the very end of a text joins the last token. A token's id is a
  hash of (`vocab_id`, its text), so two servers share ids exactly when they share `vocab_id`.
- Chat template: `<|role|>\\n{content}<|end|>\\n` per message, then `<|assistant|>\\n` as the
  generation prompt. `<|end|>` is also the end-of-sequence token that ends a finished answer: it is
  counted and has logprobs, but adds no text.
- Ranks: scoring a prompt (`prompt_logprobs`), a token whose word (its text without surrounding
  whitespace and trailing `.,:;!?`) is a key of `FakeConfig.prompt_ranks` has that rank; every
  other token has rank 1. A generated token has rank 1 under greedy decoding (temperature 0), and
  rank 1, 2 or 3 (7:2:1, by a hash of it and the token before) when sampling.
- LoRA: `lora_modules` (adapter name -> path) are served beside the model, as vLLM's
  `--lora-modules` are; a request naming an adapter answers as the model does (the fake has no
  weights), under the adapter's name. With `runtime_lora_updating` (vLLM's
  VLLM_ALLOW_RUNTIME_LORA_UPDATING) `/v1/load_lora_adapter` and `/v1/unload_lora_adapter` exist;
  without it they are 404s, as in vLLM, which then does not register them.
- Logprobs: at each position p(rank r) = p1 * (1 - p1) ** (r - 1), with p1 in [0.35, 0.95) from a
  hash of (previous token, token); the other candidates are words of the fake's prose vocabulary,
  drawn by the same hash, with the token's own leading whitespace.
"""

from playground_tools.fake_vllm.app import create_fake_app, fake_state
from playground_tools.fake_vllm.bodies import ModelT
from playground_tools.fake_vllm.chat import render_chat
from playground_tools.fake_vllm.completions import COMPLETION_DEFAULT_MAX_TOKENS
from playground_tools.fake_vllm.config import (
    DEFAULT_MAX_LOGPROBS,
    DEFAULT_PROMPT_RANKS,
    FakeConfig,
    FakeState,
    JSONObject,
    Kind,
)
from playground_tools.fake_vllm.errors import FakeAPIError, InjectedFailure
from playground_tools.fake_vllm.logprobs import TOKEN_ID_PREFIX, prompt_rank, word_of
from playground_tools.fake_vllm.server import FakeServer, main, run_fake_server
from playground_tools.fake_vllm.server import _lora_modules as _lora_modules  # for tests
from playground_tools.fake_vllm.tokenizer import (
    DEFAULT_VOCAB_ID,
    EOS_TOKEN,
    UNKNOWN_TOKEN,
    VOCAB_SIZE,
    FakeTokenizer,
    split_tokens,
    token_id,
)

__all__ = [
    "COMPLETION_DEFAULT_MAX_TOKENS",
    "DEFAULT_MAX_LOGPROBS",
    "DEFAULT_PROMPT_RANKS",
    "DEFAULT_VOCAB_ID",
    "EOS_TOKEN",
    "TOKEN_ID_PREFIX",
    "UNKNOWN_TOKEN",
    "VOCAB_SIZE",
    "FakeAPIError",
    "FakeConfig",
    "FakeServer",
    "FakeState",
    "FakeTokenizer",
    "InjectedFailure",
    "JSONObject",
    "Kind",
    "ModelT",
    "create_fake_app",
    "fake_state",
    "main",
    "prompt_rank",
    "render_chat",
    "run_fake_server",
    "split_tokens",
    "token_id",
    "word_of",
]

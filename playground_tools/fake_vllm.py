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

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import math
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Annotated, Any, Literal, TypeVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

Kind = Literal["completion", "chat"]
JSONObject = dict[str, Any]
ModelT = TypeVar("ModelT", bound=BaseModel)

# vLLM's CompletionRequest defaults max_tokens to 16 (the OpenAI default); chat fills the context.
COMPLETION_DEFAULT_MAX_TOKENS = 16
# Words per sentence of fake prose, and how often a base model starts a new paragraph.
_SENTENCE_WORDS = (4, 10)
_PARAGRAPH_BREAK_CHANCE = 0.25
_VOCABULARY = (
    "the", "a", "river", "town", "people", "market", "morning", "old", "small", "quiet",
    "road", "house", "garden", "water", "light", "winter", "summer", "children", "walked",
    "found", "made", "kept", "saw", "said", "near", "over", "under", "along", "through",
    "with", "and", "but", "then", "often", "slowly", "always", "every", "day", "year",
    "bread", "stone", "bridge", "field", "window", "letter", "story", "long", "green",
    "warm", "bright", "north", "south", "hill", "farm", "school", "evening", "friend",
    "work", "time", "place",
)  # fmt: skip
_CHAT_OPENERS = (("Sure.",), ("Here", "is", "an", "answer:"))
_SSE_DONE = "data: [DONE]\n\n"

DEFAULT_VOCAB_ID = "fake-words-1"
# The base "model" finds a chat model's stock openers unlikely, as URIAL found for style tokens.
DEFAULT_PROMPT_RANKS: dict[str, int] = {"Sure": 6, "Here": 4, "an": 2, "answer": 3}
EOS_TOKEN = "<|end|>"  # noqa: S105 (a token, not a secret)
# How vLLM writes a token with `return_tokens_as_token_ids`.
TOKEN_ID_PREFIX = "token_id:"  # noqa: S105
# Ids are below VOCAB_SIZE; word ids start at 1000, as if the first were reserved.
VOCAB_SIZE = 2**31
_FIRST_WORD_ID = 1000
# vLLM's default --max-logprobs.
DEFAULT_MAX_LOGPROBS = 20
# What a token id the tokenizer has never produced decodes to.
UNKNOWN_TOKEN = "<unk>"  # noqa: S105
_SPECIAL = r"<\|\w+\|>"
_TOKEN = re.compile(rf"\s*(?:{_SPECIAL}|(?:(?!{_SPECIAL})\S)+)")
_WORD_PUNCTUATION = ".,:;!?"


class FakeConfig(BaseModel):
    """Knobs of the fake server; mutable so tests can change behaviour of a running server."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    served_model_name: str = Field(default="fake-model", min_length=1)
    token_delay: float = Field(default=0.0, ge=0)
    first_token_delay: float = Field(default=0.0, ge=0)
    fail_status: int | None = Field(default=None, ge=400, le=599)
    fail_after_tokens: int | None = Field(default=None, ge=0)
    inject_text: str | None = None
    answer_words: int = Field(default=24, ge=0)
    max_model_len: int = Field(default=2048, ge=1)
    # The tokenizer's name: servers with different ones give the same text different ids.
    vocab_id: str = Field(default=DEFAULT_VOCAB_ID, min_length=1)
    # word -> rank when scoring a prompt; words not listed rank 1 (see the module docstring).
    prompt_ranks: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: dict(DEFAULT_PROMPT_RANKS)
    )
    max_logprobs: int = Field(default=DEFAULT_MAX_LOGPROBS, ge=0)
    # LoRA adapters served beside the model (name -> path), and whether they may be loaded and
    # unloaded at runtime (vLLM's VLLM_ALLOW_RUNTIME_LORA_UPDATING).
    lora_modules: dict[str, str] = Field(default_factory=dict)
    runtime_lora_updating: bool = False


@dataclass
class FakeState:
    """The live config, request log and tokenizers that one fake app serves from."""

    config: FakeConfig
    requests: list[JSONObject] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))
    initial: FakeConfig = field(init=False)
    tokenizers: dict[str, FakeTokenizer] = field(default_factory=dict)
    # Streams being served now, and the most served at once since the last reset.
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        """Remember the starting config so reset() can return to it."""
        self.initial = self.config.model_copy(deep=True)

    def reset(self) -> None:
        """Restore the starting config in place and clear the request log in place."""
        _assign_config(self.config, self.initial.model_dump())
        self.requests.clear()
        self.max_in_flight = self.in_flight

    def tokenizer(self, vocab_id: str) -> FakeTokenizer:
        """The tokenizer for a vocabulary (made on first use; it remembers what it has seen)."""
        found = self.tokenizers.get(vocab_id)
        if found is None:
            found = self.tokenizers.setdefault(vocab_id, FakeTokenizer(vocab_id))
        return found


class FakeAPIError(Exception):
    """An error answered as vLLM's JSON error body."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param

    def body(self) -> JSONObject:
        """vLLM's ErrorResponse shape."""
        return {
            "object": "error",
            "message": self.message,
            "type": _error_type(self.status),
            "param": self.param,
            "code": self.status,
        }


class InjectedFailure(RuntimeError):
    """Raised mid-stream on purpose (fail_after_tokens) so the connection is cut."""


def _error_type(status: int) -> str:
    """vLLM-style error type for a status: 400 -> BadRequestError, 404 -> NotFoundError."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "InternalServerError"
    name = re.sub(r"[^A-Za-z]", "", phrase.title())
    # "Internal Server Error" already ends in Error.
    return name if name.endswith("Error") else name + "Error"


# ---------------------------------------------------------------- request bodies


class _StreamOptions(BaseModel):
    """OpenAI stream_options."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


class _SamplingRequest(BaseModel):
    """Fields shared by vLLM's completion and chat requests; unknown fields are ignored."""

    # vLLM accepts (and only warns about) fields it does not know.
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: _StreamOptions | None = None
    n: int | None = 1
    prompt_logprobs: int | None = None
    return_tokens_as_token_ids: bool | None = None
    return_token_ids: bool | None = None


class _CompletionRequest(_SamplingRequest):
    """POST /v1/completions body: a text prompt, or token ids as vLLM also accepts."""

    prompt: str | list[Annotated[int, Field(ge=0)]]
    logprobs: int | None = None


class _ContentPart(BaseModel):
    """One part of a multi-part message content."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class _ChatMessage(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[_ContentPart] | None = None

    def text(self) -> str:
        """The message's text, with multi-part content joined."""
        if isinstance(self.content, list):
            return " ".join(part.text or "" for part in self.content)
        return self.content or ""


class _ChatRequest(_SamplingRequest):
    """POST /v1/chat/completions body."""

    messages: list[_ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None
    chat_template: str | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = 0
    add_generation_prompt: bool = True
    continue_final_message: bool = False


class _TokenizeRequest(BaseModel):
    """POST /tokenize body: a prompt or chat messages."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: str | None = None
    messages: list[_ChatMessage] | None = None
    add_special_tokens: bool | None = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    return_token_strs: bool | None = False


class _DetokenizeRequest(BaseModel):
    """POST /detokenize body."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    tokens: list[Annotated[int, Field(ge=0)]]


def _validate(model: type[ModelT], body: object) -> ModelT:
    """Parse a body into a request model, as a 400 naming each bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise FakeAPIError(400, problems) from exc


def _sampling_problem(req: _SamplingRequest, max_tokens: int | None) -> str | None:
    """The first sampling value vLLM would reject, in SamplingParams' wording, or None."""
    checks = (
        (req.n not in (None, 1), f"n must be 1 on the fake server, got {req.n}."),
        (
            req.temperature is not None and req.temperature < 0,
            f"temperature must be non-negative, got {req.temperature}.",
        ),
        (
            req.top_p is not None and not 0 < req.top_p <= 1,
            f"top_p must be in (0, 1], got {req.top_p}.",
        ),
        (
            req.top_k is not None and req.top_k < -1,
            f"top_k must be -1 (disable), or at least 1, got {req.top_k}.",
        ),
        (
            req.repetition_penalty is not None and req.repetition_penalty <= 0,
            f"repetition_penalty must be greater than zero, got {req.repetition_penalty}.",
        ),
        (
            max_tokens is not None and max_tokens < 1,
            f"max_tokens must be at least 1, got {max_tokens}.",
        ),
        (
            req.stream_options is not None and not req.stream,
            "Stream options can only be defined when `stream=True`.",
        ),
    )
    return next((message for bad, message in checks if bad), None)


@dataclass(frozen=True)
class _LogprobOptions:
    """What a request asked for beyond text: logprobs (top-k sizes) and token ids."""

    sample: int | None = None  # alternatives per generated token; None: no logprobs
    prompt: int | None = None  # alternatives per prompt token; None: no prompt_logprobs
    as_token_ids: bool = False  # tokens written as "token_id:N"
    token_ids: bool = False  # return_token_ids

    @property
    def detailed(self) -> bool:
        """Whether every generated token must reach the client, even one without text."""
        return self.sample is not None or self.token_ids


def _logprob_options(req: _SamplingRequest, config: FakeConfig) -> _LogprobOptions:
    """The logprob fields of a request, or vLLM's 400 for the first bad one."""
    if isinstance(req, _ChatRequest):
        top = req.top_logprobs
        if top is not None and top < 0 and top != -1:
            raise FakeAPIError(400, "`top_logprobs` must be a positive value or -1.")
        if top is not None and (top == -1 or top > 0) and not req.logprobs:
            raise FakeAPIError(400, "when using `top_logprobs`, `logprobs` must be set to true.")
        sample = (top or 0) if req.logprobs else None
    else:
        assert isinstance(req, _CompletionRequest)
        sample = req.logprobs
        if sample is not None and sample < 0 and sample != -1:
            raise FakeAPIError(400, "`logprobs` must be a positive value or -1.")
    prompt = req.prompt_logprobs
    if prompt is not None:
        if req.stream and (prompt > 0 or prompt == -1):
            raise FakeAPIError(400, "`prompt_logprobs` are not available when `stream=True`.")
        if prompt < 0 and prompt != -1:
            raise FakeAPIError(400, "`prompt_logprobs` must be a positive value or -1.")
    for name, asked in (("sample", sample), ("prompt", prompt)):
        count = VOCAB_SIZE if asked == -1 else asked
        if count is not None and count > config.max_logprobs:
            raise FakeAPIError(
                400,
                f"Requested {name} logprobs of {count}, which is greater than max allowed: "
                f"{config.max_logprobs}",
            )
    return _LogprobOptions(
        sample=sample,
        prompt=prompt,
        as_token_ids=bool(req.return_tokens_as_token_ids),
        token_ids=bool(req.return_token_ids),
    )


def _check_model(requested: str | None, config: FakeConfig) -> str:
    """The served model name, or vLLM's 404 when another model is asked for."""
    # vLLM serves its (first) model when the request names none.
    if requested is None:
        return config.served_model_name
    if requested != config.served_model_name and requested not in config.lora_modules:
        raise FakeAPIError(404, f"The model `{requested}` does not exist.", param="model")
    return requested


def _fit_context(prompt_tokens: int, max_tokens: int | None, max_model_len: int) -> int:
    """The effective max_tokens, or vLLM's 400 when prompt plus completion overflow the model."""
    if max_tokens is None:
        if prompt_tokens >= max_model_len:
            raise FakeAPIError(
                400,
                f"This model's maximum context length is {max_model_len} tokens. However, "
                f"you requested {prompt_tokens} tokens in the messages, "
                "Please reduce the length of the messages.",
            )
        return max_model_len - prompt_tokens
    if prompt_tokens + max_tokens > max_model_len:
        raise FakeAPIError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
            f"{max_tokens} in the completion). Please reduce the length of the messages or "
            "completion.",
        )
    return max_tokens


# ---------------------------------------------------------------- tokenizer and chat template


def split_tokens(text: str) -> list[str]:
    """The fake tokenizer's tokens: whitespace-led words and `<|name|>` markers, text kept exact."""
    tokens: list[str] = _TOKEN.findall(text)
    rest = text[sum(len(token) for token in tokens) :]
    if rest:  # only whitespace at the very end is left over: it joins the last token
        if tokens:
            tokens[-1] += rest
        else:
            tokens.append(rest)
    return tokens


def token_id(token: str, vocab_id: str = DEFAULT_VOCAB_ID) -> int:
    """A token's id in a vocabulary: a stable hash (sha256), so the same across processes."""
    digest = hashlib.sha256(f"{vocab_id}\x00{token}".encode()).digest()
    return _FIRST_WORD_ID + int.from_bytes(digest[:8], "big") % (VOCAB_SIZE - _FIRST_WORD_ID)


def _generation_vocabulary() -> Iterator[str]:
    """Every token the fake can generate (bar injected text), so any server can decode it."""
    words = {*_VOCABULARY, *(word for opener in _CHAT_OPENERS for word in opener)}
    for word in sorted(words):
        for cased in {word, word.capitalize(), word[:1].lower() + word[1:]}:
            for ending in ("", "."):
                for separator in ("", " ", "\n\n"):
                    yield separator + cased + ending
    yield EOS_TOKEN


class FakeTokenizer:
    """Text to ids and back for one vocabulary; it decodes every token it has met."""

    def __init__(self, vocab_id: str) -> None:
        self.vocab_id = vocab_id
        self._texts: dict[int, str] = {}
        for token in _generation_vocabulary():
            self.intern(token)

    def intern(self, token: str) -> int:
        """The id of a token, remembered so that it can be decoded."""
        ident = token_id(token, self.vocab_id)
        self._texts.setdefault(ident, token)
        return ident

    def encode(self, text: str) -> list[int]:
        """Token ids of a text (no BOS: like GPT-2 or Qwen tokenizers, it adds none)."""
        return [self.intern(token) for token in split_tokens(text)]

    def token_text(self, ident: int) -> str:
        """One token's text; an id it has never produced decodes to UNKNOWN_TOKEN."""
        return self._texts.get(ident, UNKNOWN_TOKEN)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of a sequence of ids."""
        return "".join(self.token_text(ident) for ident in ids)


def _check_token_ids(ids: Sequence[int], parameter: str) -> None:
    """vLLM's 400 for an empty token prompt or an id outside the vocabulary."""
    if not ids:
        raise FakeAPIError(
            400, "Either prompt or prompt_embeds must be provided and non-empty.", param=parameter
        )
    if max(ids) >= VOCAB_SIZE:
        raise FakeAPIError(400, f"Token id {max(ids)} is out of vocabulary", param=parameter)


def render_chat(
    messages: Sequence[_ChatMessage],
    add_generation_prompt: bool = True,
    continue_final_message: bool = False,
) -> str:
    """The fake chat template (see the module docstring)."""
    parts: list[str] = []
    for index, message in enumerate(messages):
        open_ended = continue_final_message and index == len(messages) - 1
        parts.append(f"<|{message.role}|>\n{message.text()}" + ("" if open_ended else "<|end|>\n"))
    if add_generation_prompt and not continue_final_message:
        parts.append("<|assistant|>\n")
    return "".join(parts)


def _check_template_flags(body: object) -> None:
    """vLLM's 400 when a request asks both to continue the last message and to start a new one."""
    flags = body if isinstance(body, dict) else {}
    if flags.get("continue_final_message") and flags.get("add_generation_prompt"):
        raise FakeAPIError(
            400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
        )


# ---------------------------------------------------------------- ranks and logprobs


def word_of(token: str) -> str:
    """A token's word: its text without surrounding whitespace and trailing punctuation."""
    return token.strip().rstrip(_WORD_PUNCTUATION)


def prompt_rank(token: str, config: FakeConfig) -> int:
    """The rank the fake model gives a prompt token: prompt_ranks[word], else 1."""
    return config.prompt_ranks.get(word_of(token), 1)


def _hash(*parts: str) -> int:
    """A stable integer from some strings."""
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")


def _sampled_rank(previous: str, token: str, temperature: float) -> int:
    """The rank of a token the fake generated: 1 when greedy; 1, 2 or 3 (7:2:1) when sampling."""
    if temperature == 0:
        return 1
    roll = _hash("sampled", previous, token) % 10
    return 1 if roll < 7 else 2 if roll < 9 else 3


@dataclass(frozen=True)
class _Candidate:
    """One token at a position, with its logprob and rank there."""

    token: str
    token_id: int
    logprob: float
    rank: int


@dataclass(frozen=True)
class _Position:
    """Logprobs at one position: the token that is there, and the top candidates best first."""

    chosen: _Candidate
    top: tuple[_Candidate, ...]

    def candidates(self) -> list[_Candidate]:
        """vLLM's dict order: the chosen token first, then the top ones (each token once)."""
        unique: dict[int, _Candidate] = {}
        for candidate in (self.chosen, *self.top):
            unique.setdefault(candidate.token_id, candidate)
        return list(unique.values())


def _alternatives(rng: random.Random, exclude: str, count: int) -> list[str]:
    """`count` distinct prose words other than `exclude`, in a hash-determined order."""
    pool = [word for word in _VOCABULARY if word != exclude.lower()]
    rng.shuffle(pool)
    extra = (f"{word}{n}" for n in range(2, 1_000_000) for word in _VOCABULARY)
    while len(pool) < count:
        pool.append(next(extra))
    return pool[:count]


def _position(
    previous: str, token: str, ident: int, rank: int, k: int, tokenizer: FakeTokenizer
) -> _Position:
    """The logprobs at a position where `token` (id `ident`) has rank `rank`; top k candidates."""
    seed = _hash("position", tokenizer.vocab_id, previous, token)
    first = 0.35 + (seed % 600) / 1000

    def logprob(rank: int) -> float:
        return math.log(first) + (rank - 1) * math.log1p(-first)

    lead = token[: len(token) - len(token.lstrip())]
    others = [lead + word for word in _alternatives(random.Random(seed), word_of(token), k)]
    ranked = [*others[: rank - 1], token, *others[rank - 1 :]] if rank <= k else others
    top = tuple(
        _Candidate(
            text,
            ident if text == token else tokenizer.intern(text),
            logprob(place),
            place,
        )
        for place, text in enumerate(ranked[:k], start=1)
    )
    return _Position(_Candidate(token, ident, logprob(rank), rank), top)


def _prompt_positions(
    texts: Sequence[str], ids: Sequence[int], k: int, config: FakeConfig, tokenizer: FakeTokenizer
) -> list[_Position | None]:
    """prompt_logprobs: nothing for the first token, then each token ranked by prompt_rank."""
    positions: list[_Position | None] = [None]
    for index in range(1, len(ids)):
        token = texts[index]
        rank = prompt_rank(token, config)
        positions.append(_position(texts[index - 1], token, ids[index], rank, k, tokenizer))
    return positions


def _generated_positions(
    previous: str,
    tokens: Sequence[str],
    ids: Sequence[int],
    k: int,
    temperature: float,
    tokenizer: FakeTokenizer,
) -> list[_Position]:
    """Logprobs of the generated tokens, each ranked as the fake sampled it."""
    positions: list[_Position] = []
    for token, ident in zip(tokens, ids, strict=True):
        rank = _sampled_rank(previous, token, temperature)
        positions.append(_position(previous, token, ident, rank, k, tokenizer))
        previous = token
    return positions


def _shown(candidate: _Candidate, as_token_ids: bool) -> str:
    """A token as the response writes it: its text, or "token_id:N"."""
    return f"{TOKEN_ID_PREFIX}{candidate.token_id}" if as_token_ids else candidate.token


def _completion_logprobs(
    positions: Sequence[_Position], k: int, as_token_ids: bool, first_offset: int
) -> JSONObject:
    """vLLM's CompletionLogProbs for some generated tokens (text_offset counts shown tokens)."""
    offsets: list[int] = []
    offset = first_offset
    for position in positions:
        offsets.append(offset)
        offset += len(_shown(position.chosen, as_token_ids))
    return {
        "text_offset": offsets,
        "token_logprobs": [position.chosen.logprob for position in positions],
        "tokens": [_shown(position.chosen, as_token_ids) for position in positions],
        # The chosen token and the top k: at most k + 1 entries, keyed by the shown token.
        "top_logprobs": [
            {_shown(c, as_token_ids): c.logprob for c in position.candidates()[: k + 1]}
            for position in positions
        ],
    }


def _chat_logprob(candidate: _Candidate, as_token_ids: bool) -> JSONObject:
    """One ChatCompletionLogProb: the shown token, its logprob and the bytes of what is shown."""
    shown = _shown(candidate, as_token_ids)
    return {"token": shown, "logprob": candidate.logprob, "bytes": list(shown.encode())}


def _chat_logprobs(positions: Sequence[_Position], k: int, as_token_ids: bool) -> JSONObject:
    """vLLM's ChatCompletionLogProbs; like vLLM, top_logprobs lists the chosen token first."""
    content = []
    for position in positions:
        entry = _chat_logprob(position.chosen, as_token_ids)
        # The chosen token's bytes are those of its text, even when it is shown as an id.
        entry["bytes"] = list(position.chosen.token.encode())
        entry["top_logprobs"] = [
            _chat_logprob(candidate, as_token_ids) for candidate in position.candidates()[:k]
        ]
        content.append(entry)
    return {"content": content}


def _prompt_logprobs_json(positions: Sequence[_Position | None]) -> list[JSONObject | None]:
    """vLLM's prompt_logprobs: per position {token id: {logprob, rank, decoded_token}} or null."""
    return [
        None
        if position is None
        else {
            str(c.token_id): {"logprob": c.logprob, "rank": c.rank, "decoded_token": c.token}
            for c in position.candidates()
        }
        for position in positions
    ]


# ---------------------------------------------------------------- text generation


@dataclass(frozen=True)
class _Generation:
    """What the fake model produced: each generated token's text shown and why it stopped.

    `pieces` is the text each token adds to the output (cut where a stop string starts; empty for
    EOS); `tokens` is the tokens themselves, whole, as their logprobs name them.
    """

    pieces: tuple[str, ...]
    finish_reason: Literal["stop", "length"]
    stop_reason: str | None = None
    tokens: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The whole output text."""
        return "".join(self.pieces)


def _rng(kind: Kind, source: str, seed: int | None, temperature: float) -> random.Random:
    """A generator seeded by sha256 of the inputs; greedy decoding (temperature 0) ignores seed."""
    key = {
        "kind": kind,
        "source": source,
        "seed": seed if temperature > 0 else None,
        "temperature": float(temperature),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _prose(rng: random.Random, count: int, kind: Kind) -> list[tuple[str, str]]:
    """`count` words of fake prose as (separator before, word); sentences end with a period."""
    words: list[tuple[str, str]] = []
    separator = " "
    while len(words) < count:
        length = rng.randint(*_SENTENCE_WORDS)
        for position in range(length):
            word = rng.choice(_VOCABULARY)
            word = word.capitalize() if position == 0 else word
            words.append((separator, word + ("." if position == length - 1 else "")))
            separator = " "
        # Documents have paragraphs; chat answers here are a single paragraph.
        if kind == "completion" and rng.random() < _PARAGRAPH_BREAK_CHANCE:
            separator = "\n\n"
    words = words[:count]
    if words:
        # End on a full stop so a finished answer reads like one.
        separator, last = words[-1]
        words[-1] = (separator, last.rstrip(".") + ".")
    return words


def _answer_words(rng: random.Random, kind: Kind, count: int) -> list[tuple[str, str]]:
    """The words of an unconstrained answer: chat opens with a stock phrase, base just runs on."""
    opener = [(" ", word) for word in rng.choice(_CHAT_OPENERS)] if kind == "chat" else []
    opener = opener[:count]
    return opener + _prose(rng, count - len(opener), kind)


def _inject_tokens(text: str | None) -> list[str]:
    """Split injected text into word tokens, keeping its whitespace so the text stays exact."""
    if not text:
        return []
    return re.findall(r"\s*\S+", text) or [text]


def _tokens(
    kind: Kind, source: str, seed: int | None, temperature: float, config: FakeConfig, follows: str
) -> list[str]:
    """Every token of an unconstrained output, joined onto `follows`, the text it continues."""
    tokens = _inject_tokens(config.inject_text)
    words = _answer_words(_rng(kind, source, seed, temperature), kind, config.answer_words)
    if words:
        words[0] = _first_word(kind, follows + "".join(tokens), words[0][1])
    return tokens + [separator + word for separator, word in words]


def _first_word(kind: Kind, follows: str, word: str) -> tuple[str, str]:
    """The first word's separator and case, fitted to the text before it."""
    # Like a BPE " word" token: a blank unless the text already ends in whitespace.
    separator = " " if follows and not follows[-1].isspace() else ""
    # A base model continuing mid-sentence goes on in lower case; a new line starts afresh.
    if kind == "completion" and follows.rstrip(" \t")[-1:] not in ("", "\n", ".", "!", "?", ":"):
        word = word[:1].lower() + word[1:]
    return separator, word


def _first_stop(text: str, stops: Sequence[str], searched: int) -> tuple[int, str] | None:
    """Where the first stop string (in list order, as vLLM checks) newly occurs in text."""
    for stop in stops:
        index = text.find(stop, max(0, searched - len(stop) + 1))
        if index >= 0:
            return index, stop
    return None


def _clip(tokens: Sequence[str], length: int) -> tuple[str, ...]:
    """Token texts cut so that together they are the first `length` characters."""
    pieces: list[str] = []
    used = 0
    for token in tokens:
        piece = token[: max(0, length - used)]
        pieces.append(piece)
        used += len(piece)
    return tuple(pieces)


def _limit(tokens: Sequence[str], max_tokens: int, stops: Sequence[str]) -> _Generation:
    """Apply stop strings, then max_tokens, after each token, as vLLM's stop checker does."""
    text = ""
    for count, token in enumerate(tokens, start=1):
        searched = len(text)
        text += token
        hit = _first_stop(text, stops, searched)
        if hit is not None:
            # vLLM drops the stop string and whatever followed it in the same token.
            return _Generation(_clip(tokens[:count], hit[0]), "stop", hit[1], tuple(tokens[:count]))
        if count >= max_tokens:
            return _Generation(tuple(tokens[:count]), "length", None, tuple(tokens[:count]))
    # The model emits EOS: a token of its own, counted in usage, with no text.
    return _Generation((*tokens, ""), "stop", None, (*tokens, EOS_TOKEN))


def _stop_list(stop: str | list[str] | None) -> list[str]:
    """The request's stop strings as a list, without empty ones (they would match anywhere)."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    return [s for s in stops if s]


# ---------------------------------------------------------------- responses


@dataclass(frozen=True)
class _Job:
    """One accepted generation request: everything needed to answer it."""

    kind: Kind
    model: str
    prompt_ids: tuple[int, ...]
    generation: _Generation
    stream: bool
    include_usage: bool
    response_id: str
    options: _LogprobOptions = _LogprobOptions()
    token_ids: tuple[int, ...] = ()
    positions: tuple[_Position, ...] | None = None
    prompt_positions: tuple[_Position | None, ...] | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def prompt_tokens(self) -> int:
        """How many tokens the prompt has."""
        return len(self.prompt_ids)


def _usage(job: _Job) -> JSONObject:
    """vLLM's UsageInfo, in its field order."""
    completion_tokens = len(job.generation.pieces)
    return {
        "prompt_tokens": job.prompt_tokens,
        "total_tokens": job.prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }


def _envelope(job: _Job, chunk: bool) -> JSONObject:
    """The id/object/created/model head every response and chunk starts with."""
    objects = {
        ("completion", False): "text_completion",
        ("completion", True): "text_completion",
        ("chat", False): "chat.completion",
        ("chat", True): "chat.completion.chunk",
    }
    return {
        "id": job.response_id,
        "object": objects[(job.kind, chunk)],
        "created": job.created,
        "model": job.model,
    }


def _logprobs_of(job: _Job, start: int, stop: int, first_offset: int) -> JSONObject | None:
    """The logprobs object for generated tokens start..stop, in the endpoint's shape, or None."""
    if job.positions is None or job.options.sample is None:
        return None
    positions = job.positions[start:stop]
    as_ids = job.options.as_token_ids
    if job.kind == "chat":
        return _chat_logprobs(positions, job.options.sample, as_ids)
    return _completion_logprobs(positions, job.options.sample, as_ids, first_offset)


def _prompt_logprobs_of(job: _Job) -> list[JSONObject | None] | None:
    """prompt_logprobs when asked for, else None."""
    return None if job.prompt_positions is None else _prompt_logprobs_json(job.prompt_positions)


def _full_response(job: _Job) -> JSONObject:
    """The non-streaming completion or chat.completion body."""
    gen = job.generation
    wants_ids = job.options.token_ids
    choice: JSONObject = {"index": 0}
    if job.kind == "chat":
        choice["message"] = {"role": "assistant", "content": gen.text, "tool_calls": []}
    else:
        choice["text"] = gen.text
    choice |= {
        "logprobs": _logprobs_of(job, 0, len(gen.pieces), 0),
        "finish_reason": gen.finish_reason,
        "stop_reason": gen.stop_reason,
        "token_ids": list(job.token_ids) if wants_ids else None,
    }
    usage = _usage(job) | {"prompt_tokens_details": None}
    prompt_ids = list(job.prompt_ids) if wants_ids else None
    if job.kind == "completion":
        # vLLM puts a completion's prompt logprobs and ids on the choice, a chat's at the top.
        choice |= {"prompt_logprobs": _prompt_logprobs_of(job), "prompt_token_ids": prompt_ids}
        return _envelope(job, chunk=False) | {"choices": [choice], "usage": usage}
    return _envelope(job, chunk=False) | {
        "choices": [choice],
        "usage": usage,
        "prompt_logprobs": _prompt_logprobs_of(job),
        "prompt_token_ids": prompt_ids,
    }


def _content_chunk(job: _Job, index: int, emitted: int) -> JSONObject:
    """The chunk of generated token `index` (after `emitted` characters of text); the final one
    carries finish_reason and stop_reason."""
    gen = job.generation
    piece = gen.pieces[index]
    final = index == len(gen.pieces) - 1
    logprobs = _logprobs_of(job, index, index + 1, emitted)
    if job.kind == "completion":
        # vLLM dumps completion chunks with exclude_unset=False: usage is present, as null.
        choice: JSONObject = {
            "index": 0,
            "text": piece,
            "logprobs": logprobs,
            "finish_reason": gen.finish_reason if final else None,
            "stop_reason": gen.stop_reason if final else None,
        }
        if job.options.token_ids:
            # The prompt's ids come with the first chunk only.
            choice["prompt_token_ids"] = list(job.prompt_ids) if index == 0 else None
            choice["token_ids"] = [job.token_ids[index]]
        return _envelope(job, chunk=True) | {"choices": [choice], "usage": None}
    # Chat chunks are dumped with exclude_unset=True: stop_reason only on the final chunk.
    choice = {"index": 0, "delta": {"content": piece}, "logprobs": logprobs, "finish_reason": None}
    if final:
        choice |= {"finish_reason": gen.finish_reason, "stop_reason": gen.stop_reason}
    if job.options.token_ids:
        choice["token_ids"] = [job.token_ids[index]]
    return _envelope(job, chunk=True) | {"choices": [choice]}


def _role_chunk(job: _Job) -> JSONObject:
    """The first chat chunk, which announces the assistant role (and the prompt's ids)."""
    choice = {
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": None,
    }
    chunk = _envelope(job, chunk=True) | {"choices": [choice]}
    if job.options.token_ids:
        chunk["prompt_token_ids"] = list(job.prompt_ids)
    return chunk


def _usage_chunk(job: _Job) -> JSONObject:
    """The stream_options.include_usage chunk: no choices, just usage."""
    return _envelope(job, chunk=True) | {"choices": [], "usage": _usage(job)}


def _sse(payload: JSONObject) -> str:
    """One server-sent event, serialised compactly like pydantic's model_dump_json."""
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def _events(job: _Job, config: FakeConfig) -> AsyncIterator[str]:
    """vLLM's SSE sequence for one job, paced by the configured delays."""
    pieces = job.generation.pieces
    emitted = 0
    try:
        await asyncio.sleep(config.first_token_delay)
        if job.kind == "chat":
            yield _sse(_role_chunk(job))
        for index, piece in enumerate(pieces):
            _maybe_fail(job, config, index)
            await asyncio.sleep(config.token_delay)
            final = index == len(pieces) - 1
            # Like vLLM, a token whose text a stop string cut away sends no chunk (unless last),
            # except that its logprobs or id must still reach a client that asked for them.
            if piece or final or job.options.detailed:
                yield _sse(_content_chunk(job, index, emitted))
            emitted += len(piece)
        if job.include_usage:
            yield _sse(_usage_chunk(job))
        yield _SSE_DONE
    except (asyncio.CancelledError, GeneratorExit):
        # The client went away: normal for a streaming server, so no traceback.
        log.info("fake vLLM: stream %s cancelled by the client", job.response_id)
        raise


def _maybe_fail(job: _Job, config: FakeConfig, index: int) -> None:
    """Cut the stream once fail_after_tokens tokens have been sent."""
    if config.fail_after_tokens is not None and index >= config.fail_after_tokens:
        log.warning(
            "fake vLLM: aborting stream %s after %d tokens (fail_after_tokens)",
            job.response_id,
            index,
        )
        raise InjectedFailure(f"fail_after_tokens={config.fail_after_tokens}")


async def _counted(events: AsyncIterator[str], state: FakeState) -> AsyncIterator[str]:
    """Pass a stream through, counting the streams in flight at once."""
    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    try:
        async for event in events:
            yield event
    finally:
        state.in_flight -= 1


async def _respond(job: _Job, config: FakeConfig, state: FakeState) -> Response:
    """Answer a job as an SSE stream or as one JSON body."""
    if job.stream:
        events = _counted(_events(job, config), state)
        return StreamingResponse(events, media_type="text/event-stream")
    fail_after = config.fail_after_tokens
    if fail_after is not None and len(job.generation.pieces) > fail_after:
        raise FakeAPIError(500, f"Injected failure after {fail_after} tokens.")
    # A real server takes as long to answer in one piece as it takes to stream.
    await asyncio.sleep(config.first_token_delay + config.token_delay * len(job.generation.pieces))
    return JSONResponse(_full_response(job))


class _LogInjectedFailures(logging.Filter):
    """Keep uvicorn from logging a traceback for failures the fake injects on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop records whose exception is (or wraps) an InjectedFailure."""
        return not _is_injected(record.exc_info[1] if record.exc_info else None)


def _is_injected(exc: BaseException | None) -> bool:
    """Whether an exception is an InjectedFailure, directly, in a group, or as a cause."""
    if exc is None:
        return False
    if isinstance(exc, InjectedFailure):
        return True
    if isinstance(exc, BaseExceptionGroup) and any(_is_injected(e) for e in exc.exceptions):
        return True
    return _is_injected(exc.__cause__ or exc.__context__)


def _install_log_filter() -> None:
    """Add the injected-failure filter to uvicorn's error logger once."""
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _LogInjectedFailures) for f in uvicorn_error.filters):
        uvicorn_error.addFilter(_LogInjectedFailures())


# ---------------------------------------------------------------- routes


def _state(request: Request) -> FakeState:
    """The FakeState of the app serving this request."""
    state = request.app.state.fake
    assert isinstance(state, FakeState)
    return state


async def _json_body(request: Request) -> object:
    """The request body as JSON, or a 400 in vLLM's shape."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FakeAPIError(400, f"JSON decode error: {exc}") from exc


async def _accept_generation(request: Request) -> object:
    """Log a generation request's body, then fail it if the config says every request fails."""
    state = _state(request)
    try:
        body = await _json_body(request)
    except FakeAPIError:
        raw = (await request.body()).decode("utf-8", errors="replace")
        state.requests.append({"path": request.url.path, "body": raw})
        raise
    state.requests.append({"path": request.url.path, "body": body})
    status = state.config.fail_status
    if status is not None:
        raise FakeAPIError(status, f"Injected failure: the fake server answers {status}.")
    return body


def _make_job(
    kind: Kind,
    req: _SamplingRequest,
    source: str,
    prompt_ids: list[int],
    max_tokens: int | None,
    config: FakeConfig,
    follows: str,
    tokenizer: FakeTokenizer,
) -> _Job:
    """Validate sampling fields, then generate the (deterministic) output for a request."""
    model = _check_model(req.model, config)
    problem = _sampling_problem(req, max_tokens)
    if problem is not None:
        raise FakeAPIError(400, problem)
    options = _logprob_options(req, config)
    limit = _fit_context(len(prompt_ids), max_tokens, config.max_model_len)
    temperature = 1.0 if req.temperature is None else req.temperature
    tokens = _tokens(kind, source, req.seed, temperature, config, follows)
    generation = _limit(tokens, limit, _stop_list(req.stop))
    token_ids = tuple(tokenizer.intern(token) for token in generation.tokens)
    prompt_texts = [tokenizer.token_text(ident) for ident in prompt_ids]
    positions = prompt_positions = None
    if options.sample is not None:
        previous = prompt_texts[-1] if prompt_texts else ""
        positions = tuple(
            _generated_positions(
                previous, generation.tokens, token_ids, options.sample, temperature, tokenizer
            )
        )
    if options.prompt is not None:
        prompt_positions = tuple(
            _prompt_positions(prompt_texts, prompt_ids, options.prompt, config, tokenizer)
        )
    prefix = "cmpl-" if kind == "completion" else "chatcmpl-"
    return _Job(
        kind=kind,
        model=model,
        prompt_ids=tuple(prompt_ids),
        generation=generation,
        stream=bool(req.stream),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        response_id=prefix + uuid.uuid4().hex,
        options=options,
        token_ids=token_ids,
        positions=positions,
        prompt_positions=prompt_positions,
    )


async def _completions(request: Request) -> Response:
    """POST /v1/completions: continue the prompt (text or token ids) like a base model."""
    state = _state(request)
    config = state.config.model_copy()  # this request sees one consistent config
    req = _validate(_CompletionRequest, await _accept_generation(request))
    tokenizer = state.tokenizer(config.vocab_id)
    max_tokens = COMPLETION_DEFAULT_MAX_TOKENS if req.max_tokens is None else req.max_tokens
    if isinstance(req.prompt, str):
        text, ids = req.prompt, tokenizer.encode(req.prompt)
    else:
        _check_token_ids(req.prompt, "prompt")
        text, ids = tokenizer.decode(req.prompt), list(req.prompt)
    job = _make_job("completion", req, text, ids, max_tokens, config, text, tokenizer)
    return await _respond(job, config, state)


async def _chat_completions(request: Request) -> Response:
    """POST /v1/chat/completions: answer the messages like a chat model."""
    state = _state(request)
    config = state.config.model_copy()
    body = await _accept_generation(request)
    req = _validate(_ChatRequest, body)
    assert isinstance(body, dict)  # validation above guarantees an object
    _check_template_flags(body)
    source = json.dumps(body["messages"], sort_keys=True, ensure_ascii=False)
    # Newer clients send max_completion_tokens; vLLM prefers it over max_tokens.
    max_tokens = req.max_tokens if req.max_completion_tokens is None else req.max_completion_tokens
    tokenizer = state.tokenizer(config.vocab_id)
    rendered = render_chat(req.messages, req.add_generation_prompt, req.continue_final_message)
    ids = tokenizer.encode(rendered)
    job = _make_job("chat", req, source, ids, max_tokens, config, "", tokenizer)
    return await _respond(job, config, state)


async def _tokenize(request: Request) -> JSONResponse:
    """POST /tokenize: a prompt's or chat messages' (rendered) token ids, as vLLM counts them."""
    state = _state(request)
    config = state.config
    body = await _json_body(request)
    req = _validate(_TokenizeRequest, body)
    _check_model(req.model, config)
    if (req.prompt is None) == (req.messages is None):
        raise FakeAPIError(400, "Exactly one of `prompt` or `messages` must be given.")
    tokenizer = state.tokenizer(config.vocab_id)
    if req.prompt is not None:
        ids = tokenizer.encode(req.prompt)
    else:
        _check_template_flags(body)
        messages = req.messages or []
        ids = tokenizer.encode(
            render_chat(messages, req.add_generation_prompt, req.continue_final_message)
        )
    strs = [tokenizer.token_text(ident) for ident in ids] if req.return_token_strs else None
    body = {"count": len(ids), "max_model_len": config.max_model_len, "tokens": ids}
    return JSONResponse(body | {"token_strs": strs})


async def _detokenize(request: Request) -> JSONResponse:
    """POST /detokenize: the text of some token ids."""
    state = _state(request)
    req = _validate(_DetokenizeRequest, await _json_body(request))
    _check_model(req.model, state.config)
    if req.tokens and max(req.tokens) >= VOCAB_SIZE:
        raise FakeAPIError(400, f"Token id {max(req.tokens)} is out of vocabulary")
    return JSONResponse({"prompt": state.tokenizer(state.config.vocab_id).decode(req.tokens)})


async def _health() -> Response:
    """GET /health: 200 with an empty body, as vLLM answers."""
    return Response(status_code=200)


async def _models(request: Request) -> JSONResponse:
    """GET /v1/models: the one served model, in vLLM's ModelCard shape."""
    state = _state(request)
    name = state.config.served_model_name
    permission = {
        "id": f"modelperm-{uuid.uuid4().hex}",
        "object": "model_permission",
        "created": state.created,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": True,
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }
    card = {
        "id": name,
        "object": "model",
        "created": state.created,
        "owned_by": "vllm",
        "root": name,
        "parent": None,
        "max_model_len": state.config.max_model_len,
        "permission": [permission],
    }
    # vLLM lists each adapter with its path as root, the model as parent, and no max_model_len.
    adapters = [
        card | {"id": adapter, "root": path, "parent": name, "max_model_len": None}
        for adapter, path in state.config.lora_modules.items()
    ]
    return JSONResponse({"object": "list", "data": [card, *adapters]})


_ROUTE_NOT_FOUND = {"detail": "Not Found"}


class _LoadLoraRequest(BaseModel):
    """vLLM's LoadLoRAAdapterRequest (the fields the fake reads)."""

    lora_name: str = ""
    lora_path: str = ""
    load_inplace: bool = False


class _UnloadLoraRequest(BaseModel):
    """vLLM's UnloadLoRAAdapterRequest."""

    lora_name: str = ""


async def _load_lora_adapter(request: Request) -> Response:
    """POST /v1/load_lora_adapter: serve one more adapter, with vLLM's checks and messages."""
    config = _state(request).config
    if not config.runtime_lora_updating:
        return JSONResponse(_ROUTE_NOT_FOUND, status_code=404)
    req = _validate(_LoadLoraRequest, await _json_body(request))
    name, path = req.lora_name, req.lora_path
    if not name or not path:
        raise FakeAPIError(400, "Both 'lora_name' and 'lora_path' must be provided.")
    if name == config.served_model_name:
        raise FakeAPIError(400, f"The lora adapter '{name}' conflicts with a served base model.")
    if name in config.lora_modules and not req.load_inplace:
        raise FakeAPIError(
            400,
            f"The lora adapter '{name}' has already been loaded. If you want to load the "
            "adapter in place, set 'load_inplace' to True.",
        )
    # vLLM loads an absolute path as it is; the fake accepts any other (a hub id) unchecked.
    config_file = os.path.join(path, "adapter_config.json")
    if path.startswith("/") and not await asyncio.to_thread(os.path.isfile, config_file):
        raise FakeAPIError(404, f"Loading lora {name} failed: No adapter found for <path>")
    config.lora_modules = config.lora_modules | {name: path}
    return Response(f"Success: LoRA adapter '{name}' added successfully.", status_code=200)


async def _unload_lora_adapter(request: Request) -> Response:
    """POST /v1/unload_lora_adapter: stop serving an adapter."""
    config = _state(request).config
    if not config.runtime_lora_updating:
        return JSONResponse(_ROUTE_NOT_FOUND, status_code=404)
    req = _validate(_UnloadLoraRequest, await _json_body(request))
    name = req.lora_name
    if not name:
        raise FakeAPIError(400, "'lora_name' needs to be provided to unload a LoRA adapter.")
    if name not in config.lora_modules:
        raise FakeAPIError(404, f"The lora adapter '{name}' cannot be found.")
    config.lora_modules = {k: v for k, v in config.lora_modules.items() if k != name}
    return Response(f"Success: LoRA adapter '{name}' removed successfully.", status_code=200)


def _assign_config(config: FakeConfig, changes: JSONObject) -> None:
    """Validate changes against the whole config, then apply them to the live object in place."""
    merged = FakeConfig.model_validate(config.model_dump() | changes)
    for name in changes:
        setattr(config, name, getattr(merged, name))


async def _get_config(request: Request) -> JSONResponse:
    """GET /fake/config: the live config."""
    return JSONResponse(_state(request).config.model_dump())


async def _post_config(request: Request) -> JSONResponse:
    """POST /fake/config: merge a JSON object into the live config."""
    config = _state(request).config
    changes = await _json_body(request)
    if not isinstance(changes, dict):
        raise FakeAPIError(400, "The config patch must be a JSON object.")
    try:
        _assign_config(config, changes)
    except ValidationError as exc:
        raise FakeAPIError(400, str(exc)) from exc
    return JSONResponse(config.model_dump())


async def _get_requests(request: Request) -> JSONResponse:
    """GET /fake/requests: every generation request body received, oldest first."""
    return JSONResponse(_state(request).requests)


async def _delete_requests(request: Request) -> Response:
    """DELETE /fake/requests: clear the request log."""
    _state(request).requests.clear()
    return Response(status_code=204)


async def _reset(request: Request) -> JSONResponse:
    """POST /fake/reset: the starting config again and an empty request log."""
    state = _state(request)
    state.reset()
    return JSONResponse(state.config.model_dump())


async def _on_api_error(request: Request, exc: Exception) -> Response:
    """Render FakeAPIError as vLLM's error JSON."""
    assert isinstance(exc, FakeAPIError)
    return JSONResponse(exc.body(), status_code=exc.status)


def create_fake_app(config: FakeConfig | None = None) -> FastAPI:
    """A FastAPI app speaking vLLM's OpenAI dialect; `config` stays live (shared, not copied)."""
    app = FastAPI(title="fake vLLM", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = FakeState(config=config if config is not None else FakeConfig())
    app.add_exception_handler(FakeAPIError, _on_api_error)
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/health", _health),
        ("GET", "/v1/models", _models),
        ("POST", "/v1/completions", _completions),
        ("POST", "/v1/chat/completions", _chat_completions),
        ("POST", "/tokenize", _tokenize),
        ("POST", "/detokenize", _detokenize),
        ("POST", "/v1/load_lora_adapter", _load_lora_adapter),
        ("POST", "/v1/unload_lora_adapter", _unload_lora_adapter),
        ("GET", "/fake/config", _get_config),
        ("POST", "/fake/config", _post_config),
        ("GET", "/fake/requests", _get_requests),
        ("DELETE", "/fake/requests", _delete_requests),
        ("POST", "/fake/reset", _reset),
    ]
    for method, path, endpoint in routes:
        app.add_api_route(path, endpoint, methods=[method])
    _install_log_filter()
    return app


def fake_state(app: FastAPI) -> FakeState:
    """The live state (config and request log) of an app made by create_fake_app."""
    state = app.state.fake
    assert isinstance(state, FakeState)
    return state


# ---------------------------------------------------------------- running it


class FakeServer:
    """The fake app served over real HTTP by uvicorn in a daemon thread; a context manager."""

    def __init__(
        self, config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = create_fake_app(config)
        self.state = fake_state(self.app)
        self.config: FakeConfig = self.state.config
        self.requests: list[JSONObject] = self.state.requests
        self.host = host
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        """http://HOST:PORT."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """http://HOST:PORT/v1, what an OpenAI client takes as base_url."""
        return f"{self.root_url}/v1"

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a daemon thread and return once uvicorn accepts connections."""
        server = uvicorn.Server(_uvicorn_config(self.app, self.host, self.port))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, daemon=True, name="fake-vllm"
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake vLLM server did not start")
            time.sleep(0.005)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
        self._socket.close()

    def reset(self) -> None:
        """Back to the starting config (in place) with an empty request log."""
        self.state.reset()

    def __enter__(self) -> FakeServer:
        """Start serving."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    """A bound socket, so port 0 picks a free port we know before uvicorn starts (no race)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _uvicorn_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings for an embedded server: quiet, and no global logging setup."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # leave the host process's (e.g. pytest's) logging alone
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Don't let an abandoned stream hold up shutdown for long.
        timeout_graceful_shutdown=1,
    )


def run_fake_server(
    config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> FakeServer:
    """A FakeServer to use in a with-statement: `with run_fake_server() as server: ...`."""
    return FakeServer(config, host=host, port=port)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; each maps to a FakeConfig field."""
    parser = argparse.ArgumentParser(description="A fake vLLM OpenAI-compatible server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--served-model-name", default="fake-model")
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--first-token-delay", type=float, default=0.0)
    parser.add_argument("--answer-words", type=int, default=24)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--inject-text", default=None)
    parser.add_argument("--fail-status", type=int, default=None)
    parser.add_argument("--fail-after-tokens", type=int, default=None)
    parser.add_argument("--vocab-id", default=DEFAULT_VOCAB_ID)
    # As vLLM's flags: NAME=PATH adapters (--enable-lora and --max-lora-rank change nothing here).
    parser.add_argument("--lora-modules", nargs="*", default=[], metavar="NAME=PATH")
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--max-lora-rank", type=int, default=None)
    return parser.parse_args(argv)


def _lora_modules(specs: Sequence[str]) -> dict[str, str]:
    """NAME=PATH pairs as vLLM's --lora-modules takes them."""
    pairs = [spec.partition("=") for spec in specs]
    bad = [spec for spec, (_, sep, path) in zip(specs, pairs, strict=True) if not sep or not path]
    if bad:
        raise SystemExit(f"--lora-modules wants NAME=PATH, not {bad[0]!r}")
    return {name: path for name, _, path in pairs}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake server in the foreground until interrupted."""
    args = _parse_args(argv)
    config = FakeConfig(
        served_model_name=args.served_model_name,
        token_delay=args.token_delay,
        first_token_delay=args.first_token_delay,
        answer_words=args.answer_words,
        max_model_len=args.max_model_len,
        inject_text=args.inject_text,
        fail_status=args.fail_status,
        fail_after_tokens=args.fail_after_tokens,
        vocab_id=args.vocab_id,
        lora_modules=_lora_modules(args.lora_modules),
        # Read from the environment, as vLLM reads it.
        runtime_lora_updating=os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "").lower()
        in ("1", "true"),
    )
    uvicorn.run(create_fake_app(config), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

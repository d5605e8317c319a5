"""Token shift (URIAL, Lin et al. 2023): how the base model ranks each token a chat model chose.

One request scores a whole answer: the base server's /v1/completions gets the context's ids
followed by the answer's ids as its prompt, `max_tokens: 1` and `prompt_logprobs: K`, and answers
with, for every prompt position, the logprob and rank of the token there plus the top K tokens.
Rank 1 is unshifted, 2-3 marginal, above 3 shifted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from app.config import ModelConfig
from app.generation.errors import ContextTooLong, MalformedResponse
from app.generation.http import call_json, max_model_len, tokenize_text
from app.lens.errors import LensError, VocabularyMismatch
from app.lens.vocabulary import same_vocabulary

DEFAULT_TOP_K = 5
# vLLM's default --max-logprobs.
MAX_TOP_K = 20
MARGINAL_MAX_RANK = 3
JSON_VERSION = 1


class Shift(StrEnum):
    """How far the chat model's token is from what the base model would say there."""

    UNSHIFTED = "unshifted"  # the base model's own top token
    MARGINAL = "marginal"  # its second or third choice
    SHIFTED = "shifted"  # ranked below third


def classify(rank: int) -> Shift:
    """URIAL's classes: rank 1 unshifted, 2-3 marginal, over 3 shifted."""
    if rank == 1:
        return Shift.UNSHIFTED
    return Shift.MARGINAL if rank <= MARGINAL_MAX_RANK else Shift.SHIFTED


@dataclass(frozen=True)
class TokenShift:
    """One answer token under the base model: its rank and logprob, and the base's top token."""

    position: int  # in the answer, from 0
    token_id: int
    token: str
    rank: int
    logprob: float
    top_token: str
    top_token_id: int
    top_logprob: float
    chat_logprob: float | None = None  # the chat model's own logprob, when known

    @property
    def shift(self) -> Shift:
        """Unshifted, marginal or shifted."""
        return classify(self.rank)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (with the class spelled out)."""
        return {
            "position": self.position,
            "token_id": self.token_id,
            "token": self.token,
            "rank": self.rank,
            "logprob": self.logprob,
            "top_token": self.top_token,
            "top_token_id": self.top_token_id,
            "top_logprob": self.top_logprob,
            "chat_logprob": self.chat_logprob,
            "shift": self.shift.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenShift:
        """The inverse of to_json."""
        chat_logprob = data.get("chat_logprob")
        return cls(
            position=int(data["position"]),
            token_id=int(data["token_id"]),
            token=str(data["token"]),
            rank=int(data["rank"]),
            logprob=float(data["logprob"]),
            top_token=str(data["top_token"]),
            top_token_id=int(data["top_token_id"]),
            top_logprob=float(data["top_logprob"]),
            chat_logprob=None if chat_logprob is None else float(chat_logprob),
        )


@dataclass(frozen=True)
class ShiftAnalysis:
    """A chat answer scored under a base model, token by token."""

    base_model: str  # the configured name of the base model
    context_tokens: int  # tokens before the answer in the scored prompt
    top_k: int
    tokens: tuple[TokenShift, ...]
    elapsed_seconds: float | None = None
    requests: int | None = None  # HTTP requests the analysis made, all servers

    @property
    def total(self) -> int:
        """How many answer tokens were scored."""
        return len(self.tokens)

    @property
    def counts(self) -> dict[Shift, int]:
        """Tokens per class."""
        counts = dict.fromkeys(Shift, 0)
        for token in self.tokens:
            counts[token.shift] += 1
        return counts

    def ratio(self, shift: Shift) -> float:
        """The share of the answer's tokens in a class (0 for an empty analysis)."""
        return self.counts[shift] / self.total if self.total else 0.0

    @property
    def shifted_ratio(self) -> float:
        """Share of tokens the base model ranks below third."""
        return self.ratio(Shift.SHIFTED)

    @property
    def marginal_ratio(self) -> float:
        """Share of tokens the base model ranks second or third."""
        return self.ratio(Shift.MARGINAL)

    @property
    def unshifted_ratio(self) -> float:
        """Share of tokens that are the base model's own first choice."""
        return self.ratio(Shift.UNSHIFTED)

    def shifted_tokens(self) -> list[TokenShift]:
        """The shifted tokens, in answer order (each knows the base model's top token)."""
        return [token for token in self.tokens if token.shift is Shift.SHIFTED]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; counts and ratios included for readers that don't recompute."""
        return {
            "version": JSON_VERSION,
            "base_model": self.base_model,
            "context_tokens": self.context_tokens,
            "top_k": self.top_k,
            "total": self.total,
            "counts": {shift.value: count for shift, count in self.counts.items()},
            "shifted_ratio": self.shifted_ratio,
            "marginal_ratio": self.marginal_ratio,
            "elapsed_seconds": self.elapsed_seconds,
            "requests": self.requests,
            "tokens": [token.to_json() for token in self.tokens],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShiftAnalysis:
        """The inverse of to_json (counts and ratios are recomputed from the tokens)."""
        if data.get("version") != JSON_VERSION:
            raise ValueError(f"unknown token-shift format version {data.get('version')!r}")
        try:
            elapsed = data.get("elapsed_seconds")
            requests = data.get("requests")
            return cls(
                base_model=str(data["base_model"]),
                context_tokens=int(data["context_tokens"]),
                top_k=int(data["top_k"]),
                tokens=tuple(TokenShift.from_json(token) for token in data["tokens"]),
                elapsed_seconds=None if elapsed is None else float(elapsed),
                requests=None if requests is None else int(requests),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a stored token-shift analysis: {exc!r}") from exc


async def token_shift(
    http: httpx.AsyncClient,
    base: ModelConfig,
    context: str | Sequence[int],
    answer_token_ids: Sequence[int],
    *,
    top_k: int = DEFAULT_TOP_K,
    chat: ModelConfig | None = None,
    chat_logprobs: Sequence[float | None] | None = None,
) -> ShiftAnalysis:
    """Score a chat answer's tokens under `base` with one /v1/completions request.

    `context` is what precedes the answer in the base model's format: text (tokenized by the base
    server, special tokens included, as a completion request would be) or token ids. With `chat`,
    first check that both servers share a vocabulary (VocabularyMismatch if not). Raises
    ContextTooLong, ServerUnavailable, ModelServerError or MalformedResponse before returning
    anything partial.
    """
    started = time.perf_counter()
    answer = list(answer_token_ids)
    if not answer:
        raise LensError("there is nothing to analyse: the answer has no tokens")
    if not 1 <= top_k <= MAX_TOP_K:
        raise LensError(f"top_k must be between 1 and {MAX_TOP_K}, not {top_k}")
    if chat_logprobs is not None and len(chat_logprobs) != len(answer):
        raise LensError("chat_logprobs must have one entry per answer token")
    requests = 0
    if chat is not None:
        check = await same_vocabulary(http, base, chat)
        requests += 2
        if not check.same:
            raise VocabularyMismatch(f"cannot score {chat.name}'s tokens: {check.reason}")
    if isinstance(context, str):
        tokenized = await tokenize_text(http, base, context)
        context_ids, limit = tokenized.ids, tokenized.max_model_len
    else:
        context_ids, limit = list(context), await max_model_len(http, base)
    requests += 1
    if not context_ids:
        raise LensError("the base model needs some context before the answer to score it")
    needed = len(context_ids) + len(answer) + 1  # the server also makes room for max_tokens
    if needed > limit:
        raise ContextTooLong(
            f"the context ({len(context_ids)} tokens) and the answer ({len(answer)} tokens) "
            f"need {needed} tokens with the one scoring step, but {base.name} takes at most "
            f"{limit}"
        )
    body = {
        "model": base.model,
        "prompt": [*context_ids, *answer],
        "max_tokens": 1,
        "temperature": 0,
        "prompt_logprobs": top_k,
    }
    reply = await call_json(http, base, "POST", f"{base.server_url}/completions", body)
    requests += 1
    scored = _read_prompt_logprobs(reply, base, len(context_ids), answer, chat_logprobs)
    return ShiftAnalysis(
        base_model=base.name,
        context_tokens=len(context_ids),
        top_k=top_k,
        tokens=tuple(scored),
        elapsed_seconds=time.perf_counter() - started,
        requests=requests,
    )


def _read_prompt_logprobs(
    reply: Mapping[str, Any],
    base: ModelConfig,
    offset: int,
    answer: Sequence[int],
    chat_logprobs: Sequence[float | None] | None,
) -> list[TokenShift]:
    """Each answer token's entry in choices[0].prompt_logprobs (first entry null, then per
    prompt token {id: {logprob, rank, decoded_token}} with that token and the top K)."""
    choices = reply.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    entries = choice.get("prompt_logprobs") if isinstance(choice, Mapping) else None
    if not isinstance(entries, list):
        raise MalformedResponse(f"{base.name} sent no prompt_logprobs")
    if len(entries) != offset + len(answer):
        raise MalformedResponse(
            f"{base.name} sent prompt_logprobs for {len(entries)} tokens, not for the "
            f"{offset + len(answer)} it was sent"
        )
    scored = []
    for position, ident in enumerate(answer):
        entry = entries[offset + position]
        if not isinstance(entry, Mapping) or not entry:
            raise MalformedResponse(f"{base.name} scored no token at position {offset + position}")
        candidates = {_token_id(key, base): _candidate(value, base) for key, value in entry.items()}
        own = candidates.get(ident)
        if own is None:
            raise MalformedResponse(
                f"{base.name}'s prompt_logprobs at position {offset + position} lack token {ident}"
            )
        best_id = min(candidates, key=lambda key: candidates[key][1])
        best = candidates[best_id]
        if best[1] != 1:
            raise MalformedResponse(f"{base.name} sent no top token at {offset + position}")
        scored.append(
            TokenShift(
                position=position,
                token_id=ident,
                token=own[2],
                rank=own[1],
                logprob=own[0],
                top_token=best[2],
                top_token_id=best_id,
                top_logprob=best[0],
                chat_logprob=None if chat_logprobs is None else chat_logprobs[position],
            )
        )
    return scored


def _candidate(value: object, base: ModelConfig) -> tuple[float, int, str]:
    """(logprob, rank, decoded text) from one vLLM Logprob object."""
    if not isinstance(value, Mapping):
        raise MalformedResponse(f"{base.name} sent a prompt logprob that is not an object")
    logprob, rank, text = value.get("logprob"), value.get("rank"), value.get("decoded_token")
    if isinstance(logprob, bool) or not isinstance(logprob, int | float):
        raise MalformedResponse(f"{base.name} sent a prompt logprob without a number")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise MalformedResponse(f"{base.name} sent a prompt logprob without a rank")
    return float(logprob), rank, text if isinstance(text, str) else ""


def _token_id(key: object, base: ModelConfig) -> int:
    try:
        return int(str(key))
    except ValueError as exc:
        raise MalformedResponse(f"{base.name} keyed a prompt logprob by {key!r}") from exc

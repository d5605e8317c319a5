"""The fake model's ranks and logprobs, in vLLM's completion, chat and prompt_logprobs shapes."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from playground_tools.fake_vllm.bodies import ChatRequest, CompletionRequest, SamplingRequest
from playground_tools.fake_vllm.config import FakeConfig, JSONObject
from playground_tools.fake_vllm.errors import FakeAPIError
from playground_tools.fake_vllm.tokenizer import VOCAB_SIZE, VOCABULARY, FakeTokenizer

# How vLLM writes a token with `return_tokens_as_token_ids`.
TOKEN_ID_PREFIX = "token_id:"  # noqa: S105
_WORD_PUNCTUATION = ".,:;!?"


@dataclass(frozen=True)
class LogprobOptions:
    """What a request asked for beyond text: logprobs (top-k sizes) and token ids."""

    sample: int | None = None  # alternatives per generated token; None: no logprobs
    prompt: int | None = None  # alternatives per prompt token; None: no prompt_logprobs
    as_token_ids: bool = False  # tokens written as "token_id:N"
    token_ids: bool = False  # return_token_ids

    @property
    def detailed(self) -> bool:
        """Whether every generated token must reach the client, even one without text."""
        return self.sample is not None or self.token_ids


def logprob_options(req: SamplingRequest, config: FakeConfig) -> LogprobOptions:
    """The logprob fields of a request, or vLLM's 400 for the first bad one."""
    if isinstance(req, ChatRequest):
        top = req.top_logprobs
        if top is not None and top < 0 and top != -1:
            raise FakeAPIError(400, "`top_logprobs` must be a positive value or -1.")
        if top is not None and (top == -1 or top > 0) and not req.logprobs:
            raise FakeAPIError(400, "when using `top_logprobs`, `logprobs` must be set to true.")
        sample = (top or 0) if req.logprobs else None
    else:
        assert isinstance(req, CompletionRequest)
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
    return LogprobOptions(
        sample=sample,
        prompt=prompt,
        as_token_ids=bool(req.return_tokens_as_token_ids),
        token_ids=bool(req.return_token_ids),
    )


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
class Position:
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
    pool = [word for word in VOCABULARY if word != exclude.lower()]
    rng.shuffle(pool)
    extra = (f"{word}{n}" for n in range(2, 1_000_000) for word in VOCABULARY)
    while len(pool) < count:
        pool.append(next(extra))
    return pool[:count]


def _position(
    previous: str, token: str, ident: int, rank: int, k: int, tokenizer: FakeTokenizer
) -> Position:
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
    return Position(_Candidate(token, ident, logprob(rank), rank), top)


def score_prompt(
    texts: Sequence[str], ids: Sequence[int], k: int, config: FakeConfig, tokenizer: FakeTokenizer
) -> list[Position | None]:
    """prompt_logprobs: nothing for the first token, then each token ranked by prompt_rank."""
    positions: list[Position | None] = [None]
    for index in range(1, len(ids)):
        token = texts[index]
        rank = prompt_rank(token, config)
        positions.append(_position(texts[index - 1], token, ids[index], rank, k, tokenizer))
    return positions


def score_generated(
    previous: str,
    tokens: Sequence[str],
    ids: Sequence[int],
    k: int,
    temperature: float,
    tokenizer: FakeTokenizer,
) -> list[Position]:
    """Logprobs of the generated tokens, each ranked as the fake sampled it."""
    positions: list[Position] = []
    for token, ident in zip(tokens, ids, strict=True):
        rank = _sampled_rank(previous, token, temperature)
        positions.append(_position(previous, token, ident, rank, k, tokenizer))
        previous = token
    return positions


def _shown(candidate: _Candidate, as_token_ids: bool) -> str:
    """A token as the response writes it: its text, or "token_id:N"."""
    return f"{TOKEN_ID_PREFIX}{candidate.token_id}" if as_token_ids else candidate.token


def completion_logprobs(
    positions: Sequence[Position], k: int, as_token_ids: bool, first_offset: int
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


def chat_logprobs(positions: Sequence[Position], k: int, as_token_ids: bool) -> JSONObject:
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


def prompt_logprobs_json(positions: Sequence[Position | None]) -> list[JSONObject | None]:
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

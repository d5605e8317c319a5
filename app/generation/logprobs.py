"""The token view: per-token text, logprob and top alternatives read from vLLM responses.

Reads both endpoints' shapes, whole or streamed (a chunk carries its own tokens' logprobs):

- /v1/completions with `logprobs: k`: `choices[0].logprobs = {tokens, token_logprobs,
  top_logprobs: [{token: logprob}], text_offset}`;
- /v1/chat/completions with `logprobs: true, top_logprobs: k`: `choices[0].logprobs.content =
  [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]`.

Token ids come from `choices[0].token_ids` (vLLM's `return_token_ids`) or from tokens written as
"token_id:N" (`return_tokens_as_token_ids`; a chat entry's `bytes` then still hold its text).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from app.generation.errors import MalformedResponse

TOKEN_ID_PREFIX = "token_id:"  # noqa: S105 (vLLM's spelling, not a secret)
# vLLM writes -inf as this.
LOGPROB_FLOOR = -9999.0


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """One generated token: its text, its logprob, and the top alternatives (best first)."""

    token: str
    logprob: float | None
    top: list[tuple[str, float]] = field(default_factory=list)
    token_id: int | None = None

    @property
    def probability(self) -> float | None:
        """exp(logprob), or None when the server sent no logprob."""
        return None if self.logprob is None else math.exp(self.logprob)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "token": self.token,
            "logprob": self.logprob,
            "top": [[text, logprob] for text, logprob in self.top],
            "token_id": self.token_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenInfo:
        """The inverse of to_json."""
        try:
            return cls(
                token=str(data["token"]),
                logprob=None if data.get("logprob") is None else float(data["logprob"]),
                top=[(str(text), float(logprob)) for text, logprob in data.get("top") or []],
                token_id=None if data.get("token_id") is None else int(data["token_id"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a stored token: {exc}") from exc


def token_view(response: Mapping[str, Any] | Iterable[Mapping[str, Any] | str]) -> list[TokenInfo]:
    """Every token of a response: a whole JSON body, or the parsed chunks of a stream (in
    order; the usage chunk and "[DONE]" may be included and are skipped)."""
    if isinstance(response, Mapping):
        return tokens_from_chunk(response)
    tokens: list[TokenInfo] = []
    for chunk in response:
        if isinstance(chunk, Mapping):
            tokens += tokens_from_chunk(chunk)
    return tokens


def tokens_from_chunk(chunk: Mapping[str, Any]) -> list[TokenInfo]:
    """The tokens whose logprobs one response or streamed chunk carries (none if it has none)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices:
        return []
    choice = choices[0]
    if not isinstance(choice, Mapping):
        raise MalformedResponse("a choice in the response is not an object")
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return []
    if not isinstance(logprobs, Mapping):
        raise MalformedResponse("logprobs in the response is not an object")
    # Ids are attached while the tokens are built (one object per token, not two).
    token_ids = choice.get("token_ids")
    if "content" in logprobs:
        content = logprobs.get("content")
        ids = _ids_for(token_ids, len(content) if isinstance(content, list) else -1)
        return _chat_tokens(content, ids)
    shown = logprobs.get("tokens")
    return _completion_tokens(logprobs, _ids_for(token_ids, _length(shown)))


def without_stop_token(
    tokens: Sequence[TokenInfo], finish_reason: str | None, stop_reason: int | str | None
) -> list[TokenInfo]:
    """The tokens of the answer's text: drops the final EOS/stop token, which vLLM counts and
    scores but does not show (finish "stop" with no stop string, or a stop token id)."""
    ended_on_token = finish_reason == "stop" and not isinstance(stop_reason, str)
    return list(tokens[:-1] if ended_on_token and tokens else tokens)


def _number(value: object, what: str) -> float:
    if type(value) is float:  # the usual case, checked first (it runs ~6 times per token)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedResponse(f"{what} is not a number")
    return float(value)


def _text_and_id(shown: str, raw_bytes: object = None) -> tuple[str, int | None]:
    """A token's text and id from how vLLM wrote it (its bytes give the text of "token_id:N")."""
    ident = None
    if shown.startswith(TOKEN_ID_PREFIX) and shown[len(TOKEN_ID_PREFIX) :].isdigit():
        ident = int(shown[len(TOKEN_ID_PREFIX) :])
        if isinstance(raw_bytes, list) and all(isinstance(b, int) for b in raw_bytes):
            shown = bytes(b & 0xFF for b in raw_bytes).decode("utf-8", errors="replace")
    return shown, ident


_BY_LOGPROB = itemgetter(1)


def _best_first(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    # vLLM lists the chosen token first even when others are likelier: order by logprob
    # (reverse=True keeps the order of ties, as sorting by the negated logprob did).
    pairs.sort(key=_BY_LOGPROB, reverse=True)
    return pairs


def _length(value: object) -> int:
    return len(value) if isinstance(value, list) else -1


def _ids_for(token_ids: object, count: int) -> list[int | None] | None:
    """`return_token_ids` ids, position by position, when there is one per token (else None)."""
    if not isinstance(token_ids, list) or len(token_ids) != count:
        return None
    for ident in token_ids:
        if not isinstance(ident, int) or isinstance(ident, bool):
            raise MalformedResponse("token_ids holds something that is not an id")
    return token_ids


def _completion_tokens(
    logprobs: Mapping[str, Any], ids: list[int | None] | None = None
) -> list[TokenInfo]:
    shown = logprobs.get("tokens")
    values = logprobs.get("token_logprobs")
    tops = logprobs.get("top_logprobs")
    if not isinstance(shown, list) or not isinstance(values, list):
        raise MalformedResponse("completion logprobs lack tokens or token_logprobs")
    if tops is None:
        tops = [None] * len(shown)
    if not isinstance(tops, list) or not len(shown) == len(values) == len(tops):
        raise MalformedResponse("completion logprobs have lists of different lengths")
    tokens = []
    for position, (text, value, top) in enumerate(zip(shown, values, tops, strict=True)):
        if not isinstance(text, str) or not (top is None or isinstance(top, Mapping)):
            raise MalformedResponse("completion logprobs hold a token that is not text")
        token, ident = _text_and_id(text)
        alternatives = [(str(k), _number(v, "a top logprob")) for k, v in (top or {}).items()]
        logprob = None if value is None else _number(value, "a token logprob")
        if ids is not None:
            ident = ids[position]
        tokens.append(TokenInfo(token, logprob, _best_first(alternatives), ident))
    return tokens


def _chat_tokens(content: object, ids: list[int | None] | None = None) -> list[TokenInfo]:
    if content is None:
        return []
    if not isinstance(content, list):
        raise MalformedResponse("chat logprobs content is not a list")
    tokens = []
    for position, entry in enumerate(content):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("token"), str):
            raise MalformedResponse("a chat logprobs entry has no token")
        token, ident = _text_and_id(entry["token"], entry.get("bytes"))
        alternatives = []
        for item in entry.get("top_logprobs") or ():
            if not isinstance(item, Mapping) or not isinstance(item.get("token"), str):
                raise MalformedResponse("a chat top_logprobs entry has no token")
            alternatives.append((item["token"], _number(item.get("logprob"), "a top logprob")))
        logprob = _number(entry.get("logprob", LOGPROB_FLOOR), "a token logprob")
        if ids is not None:
            ident = ids[position]
        tokens.append(TokenInfo(token, logprob, _best_first(alternatives), ident))
    return tokens


def generated_token_ids(
    response: Mapping[str, Any] | Iterable[Mapping[str, Any] | str],
) -> list[int] | None:
    """The ids of every generated token (vLLM's `return_token_ids`), whole body or stream;
    None when the server sent none."""
    chunks = [response] if isinstance(response, Mapping) else response
    ids: list[int] | None = None
    for chunk in chunks:
        if not isinstance(chunk, Mapping):
            continue
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            continue
        found = choices[0].get("token_ids")
        if found is None:
            continue
        if not isinstance(found, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in found
        ):
            raise MalformedResponse("token_ids holds something that is not an id")
        ids = [*(ids or []), *found]
    return ids

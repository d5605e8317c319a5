"""Streaming client for vLLM's OpenAI-compatible API: completions for base, chat for chat models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from app.config import ModelConfig
from app.generation.contract import GenerationRequest, ModelContract, contract_for
from app.generation.errors import MalformedResponse, ModelServerError
from app.generation.http import auth_headers, connection_errors, error_message, http_error
from app.generation.logprobs import TokenInfo, tokens_from_chunk, without_stop_token

MAX_FINISH_REASON_CHARS = 40  # the column's width


@dataclass(frozen=True)
class TextDelta:
    """New text from the model."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The model stopped: why, the token counts the server reported, and (when logprobs were
    asked for) every token of the text with its logprob and top alternatives."""

    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens: list[TokenInfo] | None = None


StreamEvent = TextDelta | Finished


class ModelClient:
    """Talks to every configured model server over one shared HTTP connection pool."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas as they arrive, then exactly one Finished; raise ModelServerError."""
        headers = {"Accept": "text/event-stream", **auth_headers(request.model)}
        with connection_errors(request.model):
            async with self._http.stream(
                "POST", request.endpoint, json=request.body(), headers=headers
            ) as response:
                if response.status_code >= 400:
                    raise http_error(response.status_code, await response.aread(), request.model)
                async for event in _parse_stream(response, request.model):
                    yield event


async def _parse_stream(response: httpx.Response, model: ModelConfig) -> AsyncIterator[StreamEvent]:
    """Turn vLLM's `data: {...}` lines into events; a stream without [DONE] is an error."""
    contract = contract_for(model.kind)
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    usage: dict[str, Any] = {}
    tokens: list[TokenInfo] = []
    tokens_broken = False
    async for lines in _data_lines(response):
        for line in lines:
            data = line[5:].strip()
            if data == b"[DONE]":
                view = None if tokens_broken or not tokens else tokens
                yield Finished(
                    finish_reason,
                    usage.get("prompt_tokens"),
                    usage.get("completion_tokens"),
                    None if view is None else without_stop_token(view, finish_reason, stop_reason),
                )
                return
            chunk = _decode(data, model)
            if "error" in chunk or chunk.get("object") == "error":
                raise ModelServerError(f"{model.name} failed mid-stream: {error_message(data)}")
            if chunk.get("usage"):
                usage = chunk["usage"]
            if not tokens_broken:
                try:
                    tokens += tokens_from_chunk(chunk)
                except MalformedResponse:
                    # The token view is a bonus: odd logprobs must not cost the answer itself.
                    tokens_broken = True
            for choice in chunk.get("choices") or []:
                text = _choice_text(choice, contract)
                if text:
                    yield TextDelta(text)
                if choice.get("finish_reason"):
                    finish_reason = str(choice["finish_reason"])[:MAX_FINISH_REASON_CHARS]
                if isinstance(choice.get("stop_reason"), int | str):
                    stop_reason = choice["stop_reason"]
    raise ModelServerError(f"{model.name} closed the stream before it finished")


async def _data_lines(response: httpx.Response) -> AsyncIterator[list[bytes]]:
    """The stream's `data:` lines as bytes, those of one read together: split by hand, without
    decoding every line to str first (httpx's aiter_lines was a visible share of the relay
    cost)."""
    # Unencoded (as model servers send it) and not yet read: the raw body, without httpx's
    # decoder and chunker layers on every read.
    plain = response.headers.get("content-encoding", "identity").strip().lower() == "identity"
    raw = plain and not response.is_stream_consumed
    blocks = response.aiter_raw() if raw else response.aiter_bytes()
    pending = b""
    async for block in blocks:
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        data = [line for line in lines if line.startswith(b"data:")]
        if data:
            yield data
    if pending.startswith(b"data:"):
        yield [pending]


def _decode(data: bytes, model: ModelConfig) -> dict[str, Any]:
    """One chunk's JSON object (orjson: several times faster than json on logprob chunks)."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        # orjson refuses what json takes (a lone surrogate escape): let json decide.
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ModelServerError(f"{model.name} sent malformed data: {_shown(data)!r}") from exc
    if not isinstance(chunk, dict):
        raise ModelServerError(
            f"{model.name} sent malformed data (not an object): {_shown(data)!r}"
        )
    return chunk


def _shown(data: bytes) -> str:
    """The start of a bad chunk, for the error message."""
    return data[:100].decode("utf-8", "replace")


def _choice_text(choice: dict[str, Any], contract: ModelContract) -> str:
    """The new text in one streamed choice (NUL, which no database text column takes, replaced)."""
    return contract.choice_text(choice).replace("\x00", "\ufffd")

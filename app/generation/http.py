"""The one HTTP helper for model servers (headers, errors), and their JSON calls: /tokenize,
/detokenize, /v1/models."""
# LoRA adapter calls (/v1/load_lora_adapter, parents from /v1/models) are in adapters.py.

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from app.config import ModelConfig
from app.generation.errors import (
    ContextTooLong,
    MalformedResponse,
    ModelServerError,
    ServerUnavailable,
)

MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Tokenized:
    """What /tokenize answered: the ids, the model's context size, and (if asked) token strings.

    vLLM's `token_strs` are vocabulary pieces (e.g. "Ġriver"), not display text: use /detokenize
    for text.
    """

    ids: list[int]
    max_model_len: int
    token_strs: list[str] | None = None

    @property
    def count(self) -> int:
        """How many tokens."""
        return len(self.ids)


@dataclass(frozen=True)
class RenderedPrompt:
    """The exact text a chat model sees after its template, and how many tokens it is."""

    text: str
    token_count: int
    max_model_len: int


def root_url(model: ModelConfig) -> str:
    """The server's root (vLLM serves /tokenize and /detokenize there, beside /v1)."""
    url = model.server_url
    return url[: -len("/v1")] if url.endswith("/v1") else url


def auth_headers(model: ModelConfig) -> dict[str, str]:
    """The Authorization header for a server that wants an API key."""
    return {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}


def error_message(raw: bytes) -> str:
    """The message inside a vLLM/OpenAI error body, or the body itself, shortened."""
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text[:MAX_ERROR_CHARS] or "(empty body)"
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:MAX_ERROR_CHARS]
    return text[:MAX_ERROR_CHARS]


def http_error(response_status: int, raw: bytes, model: ModelConfig) -> ModelServerError:
    """The error for a 4xx/5xx answer: too long a context, or the server's own message."""
    message = f"{model.name} answered HTTP {response_status}: {error_message(raw)}"
    if "maximum context length" in message:
        return ContextTooLong(message)
    return ModelServerError(message)


@contextlib.contextmanager
def connection_errors(model: ModelConfig) -> Iterator[None]:
    """Turn httpx's connection failures and timeouts into ServerUnavailable naming the model."""
    try:
        yield
    except httpx.ConnectError as exc:
        raise ServerUnavailable(f"cannot connect to {model.name} at {model.url}") from exc
    except httpx.TimeoutException as exc:
        raise ServerUnavailable(f"{model.name} timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise ServerUnavailable(f"connection to {model.name} failed: {exc!r}") from exc


async def call_json(
    http: httpx.AsyncClient,
    model: ModelConfig,
    method: str,
    url: str,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One request to a model server; its JSON object, or a ModelServerError saying why not."""
    with connection_errors(model):
        response = await http.request(method, url, json=body, headers=auth_headers(model))
    if response.status_code >= 400:
        raise http_error(response.status_code, response.content, model)
    try:
        parsed = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"{model.name} sent a body that is not JSON") from exc
    if not isinstance(parsed, dict):
        raise MalformedResponse(f"{model.name} sent JSON that is not an object")
    return parsed


def _int_list(value: object, what: str, model: ModelConfig) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise MalformedResponse(f"{model.name} sent no list of token ids in {what}")
    return value


def _tokenized(body: dict[str, Any], model: ModelConfig) -> Tokenized:
    ids = _int_list(body.get("tokens"), "its /tokenize answer", model)
    limit = body.get("max_model_len")
    if not isinstance(limit, int) or limit < 1:
        raise MalformedResponse(f"{model.name} sent no max_model_len from /tokenize")
    strs = body.get("token_strs")
    return Tokenized(ids, limit, strs if isinstance(strs, list) else None)


async def tokenize_text(
    http: httpx.AsyncClient,
    model: ModelConfig,
    text: str,
    *,
    add_special_tokens: bool = True,
    return_token_strs: bool = False,
) -> Tokenized:
    """The ids a server makes of a text prompt (with BOS etc. as a completion request would)."""
    body = {
        "model": model.model,
        "prompt": text,
        "add_special_tokens": add_special_tokens,
        "return_token_strs": return_token_strs,
    }
    answer = await call_json(http, model, "POST", f"{root_url(model)}/tokenize", body)
    return _tokenized(answer, model)


async def tokenize_messages(
    http: httpx.AsyncClient,
    model: ModelConfig,
    messages: Sequence[Mapping[str, str]],
    *,
    add_generation_prompt: bool = True,
    continue_final_message: bool = False,
    return_token_strs: bool = False,
) -> Tokenized:
    """The ids of chat messages after the model's chat template (the configured one if set)."""
    body: dict[str, Any] = {
        "model": model.model,
        "messages": [dict(message) for message in messages],
        "add_generation_prompt": add_generation_prompt,
        "continue_final_message": continue_final_message,
        "return_token_strs": return_token_strs,
    }
    if model.chat_template is not None:
        body["chat_template"] = model.chat_template
    answer = await call_json(http, model, "POST", f"{root_url(model)}/tokenize", body)
    return _tokenized(answer, model)


async def detokenize(http: httpx.AsyncClient, model: ModelConfig, ids: Sequence[int]) -> str:
    """The text of some token ids, as the server's tokenizer decodes them."""
    body = {"model": model.model, "tokens": list(ids)}
    answer = await call_json(http, model, "POST", f"{root_url(model)}/detokenize", body)
    text = answer.get("prompt")
    if not isinstance(text, str):
        raise MalformedResponse(f"{model.name} sent no text from /detokenize")
    return text


async def max_model_len(http: httpx.AsyncClient, model: ModelConfig) -> int:
    """The model's context window, from its card in /v1/models."""
    answer = await call_json(http, model, "GET", f"{model.server_url}/models")
    cards = answer.get("data")
    if not isinstance(cards, list) or not cards:
        raise MalformedResponse(f"{model.name} lists no models in /v1/models")
    card = _card(cards, model.model) or cards[0]
    if isinstance(card, dict) and card.get("max_model_len") is None and card.get("parent"):
        # vLLM gives an adapter's card no max_model_len: its parent's is the one that applies.
        card = _card(cards, card["parent"]) or card
    limit = card.get("max_model_len") if isinstance(card, dict) else None
    if not isinstance(limit, int) or limit < 1:
        raise MalformedResponse(f"{model.name} gives no max_model_len in /v1/models")
    return limit


def _card(cards: list[Any], served: object) -> dict[str, Any] | None:
    """The /v1/models card of one served name, or None."""
    return next((c for c in cards if isinstance(c, dict) and c.get("id") == served), None)


async def rendered_chat_prompt(
    http: httpx.AsyncClient, model: ModelConfig, messages: Sequence[Mapping[str, str]]
) -> RenderedPrompt:
    """The exact string a chat model sees for these messages (its template applied by the
    server, ready for the answer), and its token count: /tokenize, then /detokenize."""
    tokens = await tokenize_messages(http, model, messages)
    text = await detokenize(http, model, tokens.ids)
    return RenderedPrompt(text, tokens.count, tokens.max_model_len)

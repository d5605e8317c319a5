"""Request bodies as vLLM parses them, and vLLM's checks (and 400/404 wording) on their values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from playground_tools.fake_vllm.config import FakeConfig
from playground_tools.fake_vllm.errors import FakeAPIError
from playground_tools.fake_vllm.tokenizer import VOCAB_SIZE

ModelT = TypeVar("ModelT", bound=BaseModel)


class StreamOptions(BaseModel):
    """OpenAI stream_options."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


class SamplingRequest(BaseModel):
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
    stream_options: StreamOptions | None = None
    n: int | None = 1
    prompt_logprobs: int | None = None
    return_tokens_as_token_ids: bool | None = None
    return_token_ids: bool | None = None


class CompletionRequest(SamplingRequest):
    """POST /v1/completions body: a text prompt, or token ids as vLLM also accepts."""

    prompt: str | list[Annotated[int, Field(ge=0)]]
    logprobs: int | None = None


class ContentPart(BaseModel):
    """One part of a multi-part message content."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text, with multi-part content joined."""
        if isinstance(self.content, list):
            return " ".join(part.text or "" for part in self.content)
        return self.content or ""


class ChatRequest(SamplingRequest):
    """POST /v1/chat/completions body."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None
    chat_template: str | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = 0
    add_generation_prompt: bool = True
    continue_final_message: bool = False


class TokenizeRequest(BaseModel):
    """POST /tokenize body: a prompt or chat messages."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: bool | None = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    return_token_strs: bool | None = False


class DetokenizeRequest(BaseModel):
    """POST /detokenize body."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    tokens: list[Annotated[int, Field(ge=0)]]


async def json_body(request: Request) -> object:
    """The request body as JSON, or a 400 in vLLM's shape."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FakeAPIError(400, f"JSON decode error: {exc}") from exc


def validate(model: type[ModelT], body: object) -> ModelT:
    """Parse a body into a request model, as a 400 naming each bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise FakeAPIError(400, problems) from exc


def sampling_problem(req: SamplingRequest, max_tokens: int | None) -> str | None:
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


def check_model(requested: str | None, config: FakeConfig) -> str:
    """The served model name, or vLLM's 404 when another model is asked for."""
    # vLLM serves its (first) model when the request names none.
    if requested is None:
        return config.served_model_name
    if requested != config.served_model_name and requested not in config.lora_modules:
        raise FakeAPIError(404, f"The model `{requested}` does not exist.", param="model")
    return requested


def fit_context(prompt_tokens: int, max_tokens: int | None, max_model_len: int) -> int:
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


def check_token_ids(ids: Sequence[int], parameter: str) -> None:
    """vLLM's 400 for an empty token prompt or an id outside the vocabulary."""
    if not ids:
        raise FakeAPIError(
            400, "Either prompt or prompt_embeds must be provided and non-empty.", param=parameter
        )
    if max(ids) >= VOCAB_SIZE:
        raise FakeAPIError(400, f"Token id {max(ids)} is out of vocabulary", param=parameter)

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
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from playground_tools.fake_vllm.bodies import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    DetokenizeRequest,
    ModelT,
    SamplingRequest,
    TokenizeRequest,
    check_model,
    check_token_ids,
    fit_context,
    json_body,
    sampling_problem,
    validate,
)
from playground_tools.fake_vllm.config import (
    DEFAULT_MAX_LOGPROBS,
    DEFAULT_PROMPT_RANKS,
    FakeConfig,
    FakeState,
    JSONObject,
    Kind,
    assign_config,
    request_state,
)
from playground_tools.fake_vllm.errors import FakeAPIError, InjectedFailure
from playground_tools.fake_vllm.logprobs import (
    TOKEN_ID_PREFIX,
    LogprobOptions,
    Position,
    chat_logprobs,
    completion_logprobs,
    logprob_options,
    prompt_logprobs_json,
    prompt_rank,
    score_generated,
    score_prompt,
    word_of,
)
from playground_tools.fake_vllm.text import Generation, answer_tokens, apply_limits, stop_list
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


@dataclass(frozen=True)
class Job:
    """One accepted generation request: everything needed to answer it."""

    kind: Kind
    model: str
    prompt_ids: tuple[int, ...]
    generation: Generation
    stream: bool
    include_usage: bool
    response_id: str
    options: LogprobOptions = field(default_factory=LogprobOptions)
    token_ids: tuple[int, ...] = ()
    positions: tuple[Position, ...] | None = None
    prompt_positions: tuple[Position | None, ...] | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def prompt_tokens(self) -> int:
        """How many tokens the prompt has."""
        return len(self.prompt_ids)


async def accept_generation(request: Request) -> object:
    """Log a generation request's body, then fail it if the config says every request fails."""
    state = request_state(request)
    try:
        body = await json_body(request)
    except FakeAPIError:
        raw = (await request.body()).decode("utf-8", errors="replace")
        state.requests.append({"path": request.url.path, "body": raw})
        raise
    state.requests.append({"path": request.url.path, "body": body})
    status = state.config.fail_status
    if status is not None:
        raise FakeAPIError(status, f"Injected failure: the fake server answers {status}.")
    return body


def make_job(
    kind: Kind,
    req: SamplingRequest,
    source: str,
    prompt_ids: list[int],
    max_tokens: int | None,
    config: FakeConfig,
    follows: str,
    tokenizer: FakeTokenizer,
) -> Job:
    """Validate sampling fields, then generate the (deterministic) output for a request."""
    model = check_model(req.model, config)
    problem = sampling_problem(req, max_tokens)
    if problem is not None:
        raise FakeAPIError(400, problem)
    options = logprob_options(req, config)
    limit = fit_context(len(prompt_ids), max_tokens, config.max_model_len)
    temperature = 1.0 if req.temperature is None else req.temperature
    tokens = answer_tokens(kind, source, req.seed, temperature, config, follows)
    generation = apply_limits(tokens, limit, stop_list(req.stop))
    token_ids = tuple(tokenizer.intern(token) for token in generation.tokens)
    prompt_texts = [tokenizer.token_text(ident) for ident in prompt_ids]
    positions = prompt_positions = None
    if options.sample is not None:
        previous = prompt_texts[-1] if prompt_texts else ""
        positions = tuple(
            score_generated(
                previous, generation.tokens, token_ids, options.sample, temperature, tokenizer
            )
        )
    if options.prompt is not None:
        prompt_positions = tuple(
            score_prompt(prompt_texts, prompt_ids, options.prompt, config, tokenizer)
        )
    prefix = "cmpl-" if kind == "completion" else "chatcmpl-"
    return Job(
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


def _usage(job: Job) -> JSONObject:
    """vLLM's UsageInfo, in its field order."""
    completion_tokens = len(job.generation.pieces)
    return {
        "prompt_tokens": job.prompt_tokens,
        "total_tokens": job.prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }


def _envelope(job: Job, chunk: bool) -> JSONObject:
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


def _logprobs_of(job: Job, start: int, stop: int, first_offset: int) -> JSONObject | None:
    """The logprobs object for generated tokens start..stop, in the endpoint's shape, or None."""
    if job.positions is None or job.options.sample is None:
        return None
    positions = job.positions[start:stop]
    as_ids = job.options.as_token_ids
    if job.kind == "chat":
        return chat_logprobs(positions, job.options.sample, as_ids)
    return completion_logprobs(positions, job.options.sample, as_ids, first_offset)


def _prompt_logprobs_of(job: Job) -> list[JSONObject | None] | None:
    """prompt_logprobs when asked for, else None."""
    return None if job.prompt_positions is None else prompt_logprobs_json(job.prompt_positions)


def full_response(job: Job) -> JSONObject:
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


def content_chunk(job: Job, index: int, emitted: int) -> JSONObject:
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


def role_chunk(job: Job) -> JSONObject:
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


def usage_chunk(job: Job) -> JSONObject:
    """The stream_options.include_usage chunk: no choices, just usage."""
    return _envelope(job, chunk=True) | {"choices": [], "usage": _usage(job)}


log = logging.getLogger(__name__)
_SSE_DONE = "data: [DONE]\n\n"


def _sse(payload: JSONObject) -> str:
    """One server-sent event, serialised compactly like pydantic's model_dump_json."""
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def _events(job: Job, config: FakeConfig) -> AsyncIterator[str]:
    """vLLM's SSE sequence for one job, paced by the configured delays."""
    pieces = job.generation.pieces
    emitted = 0
    try:
        await asyncio.sleep(config.first_token_delay)
        if job.kind == "chat":
            yield _sse(role_chunk(job))
        for index, piece in enumerate(pieces):
            _maybe_fail(job, config, index)
            await asyncio.sleep(config.token_delay)
            final = index == len(pieces) - 1
            # Like vLLM, a token whose text a stop string cut away sends no chunk (unless last),
            # except that its logprobs or id must still reach a client that asked for them.
            if piece or final or job.options.detailed:
                yield _sse(content_chunk(job, index, emitted))
            emitted += len(piece)
        if job.include_usage:
            yield _sse(usage_chunk(job))
        yield _SSE_DONE
    except (asyncio.CancelledError, GeneratorExit):
        # The client went away: normal for a streaming server, so no traceback.
        log.info("fake vLLM: stream %s cancelled by the client", job.response_id)
        raise


def _maybe_fail(job: Job, config: FakeConfig, index: int) -> None:
    """Cut the stream once fail_after_tokens tokens have been sent."""
    if config.fail_after_tokens is not None and index >= config.fail_after_tokens:
        log.warning(
            "fake vLLM: aborting stream %s after %d tokens (fail_after_tokens)",
            job.response_id,
            index,
        )
        raise InjectedFailure(f"fail_after_tokens={config.fail_after_tokens}")


async def respond(job: Job, config: FakeConfig) -> Response:
    """Answer a job as an SSE stream or as one JSON body."""
    if job.stream:
        return StreamingResponse(_events(job, config), media_type="text/event-stream")
    fail_after = config.fail_after_tokens
    if fail_after is not None and len(job.generation.pieces) > fail_after:
        raise FakeAPIError(500, f"Injected failure after {fail_after} tokens.")
    # A real server takes as long to answer in one piece as it takes to stream.
    await asyncio.sleep(config.first_token_delay + config.token_delay * len(job.generation.pieces))
    return JSONResponse(full_response(job))


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


def install_log_filter() -> None:
    """Add the injected-failure filter to uvicorn's error logger once."""
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _LogInjectedFailures) for f in uvicorn_error.filters):
        uvicorn_error.addFilter(_LogInjectedFailures())


# vLLM's CompletionRequest defaults max_tokens to 16 (the OpenAI default); chat fills the context.
COMPLETION_DEFAULT_MAX_TOKENS = 16


async def completions(request: Request) -> Response:
    """POST /v1/completions: continue the prompt (text or token ids) like a base model."""
    state = request_state(request)
    config = state.config.model_copy()  # this request sees one consistent config
    req = validate(CompletionRequest, await accept_generation(request))
    tokenizer = state.tokenizer(config.vocab_id)
    max_tokens = COMPLETION_DEFAULT_MAX_TOKENS if req.max_tokens is None else req.max_tokens
    if isinstance(req.prompt, str):
        text, ids = req.prompt, tokenizer.encode(req.prompt)
    else:
        check_token_ids(req.prompt, "prompt")
        text, ids = tokenizer.decode(req.prompt), list(req.prompt)
    job = make_job("completion", req, text, ids, max_tokens, config, text, tokenizer)
    return await respond(job, config)


def render_chat(
    messages: Sequence[ChatMessage],
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


def check_template_flags(body: object) -> None:
    """vLLM's 400 when a request asks both to continue the last message and to start a new one."""
    flags = body if isinstance(body, dict) else {}
    if flags.get("continue_final_message") and flags.get("add_generation_prompt"):
        raise FakeAPIError(
            400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
        )


async def chat_completions(request: Request) -> Response:
    """POST /v1/chat/completions: answer the messages like a chat model."""
    state = request_state(request)
    config = state.config.model_copy()
    body = await accept_generation(request)
    req = validate(ChatRequest, body)
    assert isinstance(body, dict)  # validation above guarantees an object
    check_template_flags(body)
    source = json.dumps(body["messages"], sort_keys=True, ensure_ascii=False)
    # Newer clients send max_completion_tokens; vLLM prefers it over max_tokens.
    max_tokens = req.max_tokens if req.max_completion_tokens is None else req.max_completion_tokens
    tokenizer = state.tokenizer(config.vocab_id)
    rendered = render_chat(req.messages, req.add_generation_prompt, req.continue_final_message)
    ids = tokenizer.encode(rendered)
    job = make_job("chat", req, source, ids, max_tokens, config, "", tokenizer)
    return await respond(job, config)


async def tokenize(request: Request) -> JSONResponse:
    """POST /tokenize: a prompt's or chat messages' (rendered) token ids, as vLLM counts them."""
    state = request_state(request)
    config = state.config
    body = await json_body(request)
    req = validate(TokenizeRequest, body)
    check_model(req.model, config)
    if (req.prompt is None) == (req.messages is None):
        raise FakeAPIError(400, "Exactly one of `prompt` or `messages` must be given.")
    tokenizer = state.tokenizer(config.vocab_id)
    if req.prompt is not None:
        ids = tokenizer.encode(req.prompt)
    else:
        check_template_flags(body)
        messages = req.messages or []
        ids = tokenizer.encode(
            render_chat(messages, req.add_generation_prompt, req.continue_final_message)
        )
    strs = [tokenizer.token_text(ident) for ident in ids] if req.return_token_strs else None
    body = {"count": len(ids), "max_model_len": config.max_model_len, "tokens": ids}
    return JSONResponse(body | {"token_strs": strs})


async def detokenize(request: Request) -> JSONResponse:
    """POST /detokenize: the text of some token ids."""
    state = request_state(request)
    req = validate(DetokenizeRequest, await json_body(request))
    check_model(req.model, state.config)
    if req.tokens and max(req.tokens) >= VOCAB_SIZE:
        raise FakeAPIError(400, f"Token id {max(req.tokens)} is out of vocabulary")
    return JSONResponse({"prompt": state.tokenizer(state.config.vocab_id).decode(req.tokens)})


_ROUTE_NOT_FOUND = {"detail": "Not Found"}


class _LoadLoraRequest(BaseModel):
    """vLLM's LoadLoRAAdapterRequest (the fields the fake reads)."""

    lora_name: str = ""
    lora_path: str = ""
    load_inplace: bool = False


class _UnloadLoraRequest(BaseModel):
    """vLLM's UnloadLoRAAdapterRequest."""

    lora_name: str = ""


async def load_lora_adapter(request: Request) -> Response:
    """POST /v1/load_lora_adapter: serve one more adapter, with vLLM's checks and messages."""
    config = request_state(request).config
    if not config.runtime_lora_updating:
        return JSONResponse(_ROUTE_NOT_FOUND, status_code=404)
    req = validate(_LoadLoraRequest, await json_body(request))
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


async def unload_lora_adapter(request: Request) -> Response:
    """POST /v1/unload_lora_adapter: stop serving an adapter."""
    config = request_state(request).config
    if not config.runtime_lora_updating:
        return JSONResponse(_ROUTE_NOT_FOUND, status_code=404)
    req = validate(_UnloadLoraRequest, await json_body(request))
    name = req.lora_name
    if not name:
        raise FakeAPIError(400, "'lora_name' needs to be provided to unload a LoRA adapter.")
    if name not in config.lora_modules:
        raise FakeAPIError(404, f"The lora adapter '{name}' cannot be found.")
    config.lora_modules = {k: v for k, v in config.lora_modules.items() if k != name}
    return Response(f"Success: LoRA adapter '{name}' removed successfully.", status_code=200)


async def _health() -> Response:
    """GET /health: 200 with an empty body, as vLLM answers."""
    return Response(status_code=200)


async def _models(request: Request) -> JSONResponse:
    """GET /v1/models: the one served model, in vLLM's ModelCard shape."""
    state = request_state(request)
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


async def _get_config(request: Request) -> JSONResponse:
    """GET /fake/config: the live config."""
    return JSONResponse(request_state(request).config.model_dump())


async def _post_config(request: Request) -> JSONResponse:
    """POST /fake/config: merge a JSON object into the live config."""
    config = request_state(request).config
    changes = await json_body(request)
    if not isinstance(changes, dict):
        raise FakeAPIError(400, "The config patch must be a JSON object.")
    try:
        assign_config(config, changes)
    except ValidationError as exc:
        raise FakeAPIError(400, str(exc)) from exc
    return JSONResponse(config.model_dump())


async def _get_requests(request: Request) -> JSONResponse:
    """GET /fake/requests: every generation request body received, oldest first."""
    return JSONResponse(request_state(request).requests)


async def _delete_requests(request: Request) -> Response:
    """DELETE /fake/requests: clear the request log."""
    request_state(request).requests.clear()
    return Response(status_code=204)


async def _reset(request: Request) -> JSONResponse:
    """POST /fake/reset: the starting config again and an empty request log."""
    state = request_state(request)
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
        ("POST", "/v1/completions", completions),
        ("POST", "/v1/chat/completions", chat_completions),
        ("POST", "/tokenize", tokenize),
        ("POST", "/detokenize", detokenize),
        ("POST", "/v1/load_lora_adapter", load_lora_adapter),
        ("POST", "/v1/unload_lora_adapter", unload_lora_adapter),
        ("GET", "/fake/config", _get_config),
        ("POST", "/fake/config", _post_config),
        ("GET", "/fake/requests", _get_requests),
        ("DELETE", "/fake/requests", _delete_requests),
        ("POST", "/fake/reset", _reset),
    ]
    for method, path, endpoint in routes:
        app.add_api_route(path, endpoint, methods=[method])
    install_log_filter()
    return app


def fake_state(app: FastAPI) -> FakeState:
    """The live state (config and request log) of an app made by create_fake_app."""
    state = app.state.fake
    assert isinstance(state, FakeState)
    return state


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

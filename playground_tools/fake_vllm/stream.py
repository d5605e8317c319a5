"""Answering a Job: vLLM's SSE sequence with delays and injected failures, or one JSON body."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from fastapi.responses import JSONResponse, Response, StreamingResponse

from playground_tools.fake_vllm.config import FakeConfig, FakeState, JSONObject
from playground_tools.fake_vllm.errors import FakeAPIError, InjectedFailure
from playground_tools.fake_vllm.jobs import Job
from playground_tools.fake_vllm.responses import (
    content_chunk,
    full_response,
    role_chunk,
    usage_chunk,
)

log = logging.getLogger(__name__)
_SSE_DONE = "data: [DONE]\n\n"


def _sse(payload: JSONObject) -> str:
    """One server-sent event, serialised compactly like pydantic's model_dump_json."""
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def _events(job: Job, config: FakeConfig, state: FakeState) -> AsyncIterator[str]:
    """vLLM's SSE sequence for one job, paced by the configured delays (and held)."""
    pieces = job.generation.pieces
    emitted = 0
    try:
        await asyncio.sleep(config.first_token_delay)
        if job.kind == "chat":
            yield _sse(role_chunk(job))
        for index, piece in enumerate(pieces):
            await _held(state, index)
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


async def _held(state: FakeState, index: int) -> None:
    """Wait while the live config (not this request's copy) holds streams at this token."""
    while (hold := state.config.hold_after_tokens) is not None and index >= hold:
        await state.config_event().wait()


def _maybe_fail(job: Job, config: FakeConfig, index: int) -> None:
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


async def respond(job: Job, config: FakeConfig, state: FakeState) -> Response:
    """Answer a job as an SSE stream or as one JSON body."""
    if job.stream:
        events = _counted(_events(job, config, state), state)
        return StreamingResponse(events, media_type="text/event-stream")
    fail_after = config.fail_after_tokens
    if fail_after is not None and len(job.generation.pieces) > fail_after:
        raise FakeAPIError(500, f"Injected failure after {fail_after} tokens.")
    # A real server takes as long to answer in one piece as it takes to stream; a request
    # answered in one piece is in flight as long as a stream is.
    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    try:
        delay = config.first_token_delay + config.token_delay * len(job.generation.pieces)
        await asyncio.sleep(delay)
        return JSONResponse(full_response(job))
    finally:
        state.in_flight -= 1


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

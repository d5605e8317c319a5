"""A Job's JSON: the whole completion or chat.completion body and each streamed chunk."""

from __future__ import annotations

from playground_tools.fake_vllm.config import JSONObject
from playground_tools.fake_vllm.jobs import Job
from playground_tools.fake_vllm.logprobs import (
    chat_logprobs,
    completion_logprobs,
    prompt_logprobs_json,
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

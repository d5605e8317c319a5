"""The fake chat template and POST /v1/chat/completions."""

from __future__ import annotations

import json
from collections.abc import Sequence

from fastapi import Request
from fastapi.responses import Response

from playground_tools.fake_vllm.bodies import ChatMessage, ChatRequest, validate
from playground_tools.fake_vllm.config import request_state
from playground_tools.fake_vllm.errors import FakeAPIError
from playground_tools.fake_vllm.jobs import accept_generation, make_job
from playground_tools.fake_vllm.stream import respond


def render_chat(
    messages: Sequence[ChatMessage],
    add_generation_prompt: bool = True,
    continue_final_message: bool = False,
) -> str:
    """The fake chat template (see the package docstring)."""
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
    return await respond(job, config, state)

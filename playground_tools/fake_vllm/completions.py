"""POST /v1/completions: continue a text or token-id prompt like a base model."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from playground_tools.fake_vllm.bodies import CompletionRequest, check_token_ids, validate
from playground_tools.fake_vllm.config import request_state
from playground_tools.fake_vllm.jobs import accept_generation, make_job
from playground_tools.fake_vllm.stream import respond

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
    return await respond(job, config, state)

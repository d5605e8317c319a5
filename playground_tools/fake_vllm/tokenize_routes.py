"""POST /tokenize and POST /detokenize with the fake tokenizer."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from playground_tools.fake_vllm.bodies import (
    DetokenizeRequest,
    TokenizeRequest,
    check_model,
    json_body,
    validate,
)
from playground_tools.fake_vllm.chat import check_template_flags, render_chat
from playground_tools.fake_vllm.config import request_state
from playground_tools.fake_vllm.errors import FakeAPIError
from playground_tools.fake_vllm.tokenizer import VOCAB_SIZE


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

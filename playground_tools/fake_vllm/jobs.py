"""A generation request turned into a Job: logged, checked, generated and scored."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from fastapi import Request

from playground_tools.fake_vllm.bodies import (
    SamplingRequest,
    check_model,
    fit_context,
    json_body,
    sampling_problem,
)
from playground_tools.fake_vllm.config import FakeConfig, Kind, request_state
from playground_tools.fake_vllm.errors import FakeAPIError
from playground_tools.fake_vllm.logprobs import (
    LogprobOptions,
    Position,
    logprob_options,
    score_generated,
    score_prompt,
)
from playground_tools.fake_vllm.text import Generation, answer_tokens, apply_limits, stop_list
from playground_tools.fake_vllm.tokenizer import FakeTokenizer


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

"""JSON API of the token lens: token views, token-shift analyses, prefix continuations, prompts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from app.errors import NotFound
from app.identity.current import current_identity
from app.lens.schemas import (
    GenerationDetailOut,
    PrefixInput,
    RenderedPromptOut,
    TokenOut,
    TokenShiftInput,
    TokenShiftOut,
    generation_detail_out,
    token_shift_out,
    tokens_out,
)
from app.lens.service import LensService
from app.web.deps import ModelsDep, RunnerDep, SessionDep, SettingsDep, State
from app.web.guards import require_json


def get_lens_service(
    request: Request,
    state: State,
    session: SessionDep,
    models: ModelsDep,
    runner: RunnerDep,
    settings: SettingsDep,
) -> LensService:
    """The lens service bound to this request's session and the app's shared HTTP client."""
    identity = current_identity(request)
    name = identity.username if identity is not None else None
    return LensService(session, models, state.http, runner, settings, name)


LensDep = Annotated[LensService, Depends(get_lens_service)]
# A blind comparison's answers open to the lens once this rater has judged the comparison.
Rater = Annotated[str | None, Query(max_length=64, description="the rater, for a blind comparison")]

router = APIRouter(prefix="/api/v1/generations", tags=["token lens"])
json_body = [Depends(require_json)]
# The errors every lens action can answer with, for the OpenAPI document.
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such generation"},
    409: {"description": "Not now, or the two models use different tokenizers"},
    415: {"description": "The body is not application/json"},
    422: {"description": "Bad input, a base-model answer, or an answer too long to score"},
    502: {"description": "A model server is down or answered with an error"},
}


@router.get("/{generation_id}", response_model=GenerationDetailOut, responses=ERRORS)
async def get_generation(
    generation_id: int, lens: LensDep, rater: Rater = None
) -> GenerationDetailOut:
    """A generation with its tokens, its token-shift analysis (if any) and continuations."""
    return generation_detail_out(await lens.target(generation_id, rater))


@router.get("/{generation_id}/tokens", response_model=list[TokenOut], responses=ERRORS)
async def get_tokens(generation_id: int, lens: LensDep, rater: Rater = None) -> list[TokenOut]:
    """The token view: each token's text, logprob, probability and top alternatives."""
    target = await lens.target(generation_id, rater)
    return tokens_out(lens.token_view(target.generation))


@router.post(
    "/{generation_id}/token-shift",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenShiftOut,
    dependencies=json_body,
    responses=ERRORS,
)
async def analyse(
    generation_id: int, data: TokenShiftInput, lens: LensDep, rater: Rater = None
) -> TokenShiftOut:
    """Score a chat answer under a base model in one request, store it (replacing an earlier
    analysis) and return it: each token's base rank, class and the base model's top token."""
    stored = await lens.analyse(
        generation_id, base_model=data.base_model, top_k=data.top_k, rater=rater
    )
    return token_shift_out(stored)


@router.get("/{generation_id}/token-shift", response_model=TokenShiftOut, responses=ERRORS)
async def get_analysis(generation_id: int, lens: LensDep, rater: Rater = None) -> TokenShiftOut:
    """The stored token-shift analysis of a generation (404 if it has none)."""
    target = await lens.target(generation_id, rater)
    if target.analysis is None:
        raise NotFound(f"generation {generation_id} has no token-shift analysis")
    return token_shift_out(target.analysis)


@router.post(
    "/{generation_id}/prefix-continuations",
    status_code=status.HTTP_201_CREATED,
    response_model=GenerationDetailOut,
    dependencies=json_body,
    responses=ERRORS,
)
async def continue_prefix(
    generation_id: int, data: PrefixInput, lens: LensDep, rater: Rater = None
) -> GenerationDetailOut:
    """Let the base model continue the chat answer from its first k tokens; waits for the
    continuation (slot "p") and returns it."""
    started = await lens.continue_prefix(
        generation_id, k=data.k, base_model=data.base_model, rater=rater
    )
    await lens.runner.wait_finished([started.id])
    return generation_detail_out(await lens.target(started.id, rater))


@router.get("/{generation_id}/rendered-prompt", response_model=RenderedPromptOut, responses=ERRORS)
async def rendered_prompt(
    generation_id: int, lens: LensDep, rater: Rater = None
) -> RenderedPromptOut:
    """The exact string the model saw after its template, and its token count (asked of the
    model's tokenizer once, then stored)."""
    generation = await lens.rendered_prompt(generation_id, rater)
    return RenderedPromptOut(
        generation_id=generation.id,
        kind=generation.model_kind,
        text=generation.rendered_prompt or "",
        token_count=generation.rendered_prompt_tokens or 0,
    )

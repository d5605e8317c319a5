"""Hypermedia routes of the token lens: htmx fragments drawn inside a column.

A failed action answers with its section redrawn around the message (4xx, or 502 when a model
server failed), so the message sits where the user acted and the form stays usable.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.errors import InvalidInput, PlaygroundError
from app.lens.api import LensDep
from app.lens.prefix import DEFAULT_PREFIX_TOKENS
from app.lens.service import LensTarget
from app.lens.views import probability_cells
from app.web.deps import SessionDep, State
from app.web.pages import csrf, rater_of
from app.web.templating import templates

router = APIRouter(include_in_schema=False)


def lens_context(state: State, target: LensTarget) -> dict[str, Any]:
    """What every lens section needs: the generation, its turn, conversation and stored
    analysis, and the base models to choose from."""
    return {
        "g": target.generation,
        "turn": target.turn,
        "conversation": target.conversation,
        "analysis": target.analysis,
        "base_models": state.base_model_names(),
    }


def fragment(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A template rendered as an htmx fragment."""
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _chosen_base(form_value: object) -> str | None:
    """The base model picked in a form, or None for the conversation's own."""
    return form_value.strip() or None if isinstance(form_value, str) else None


@router.get("/generations/{generation_id}/tokens", response_class=HTMLResponse)
async def token_view(generation_id: int, request: Request, lens: LensDep) -> HTMLResponse:
    """The answer's tokens coloured by the model's own probability, alternatives on hover."""
    generation = (await lens.target(generation_id, rater_of(request))).generation
    try:
        cells = probability_cells(lens.token_view(generation))
    except PlaygroundError as exc:
        context = {"message": exc.message, "summary": "Tokens: not available"}
        return fragment(request, "_lens_error.html", context, exc.status_code)
    return fragment(request, "_token_view.html", {"g": generation, "cells": cells})


@router.post(
    "/generations/{generation_id}/token-shift", response_class=HTMLResponse, dependencies=csrf
)
async def token_shift(
    generation_id: int, request: Request, state: State, lens: LensDep, session: SessionDep
) -> HTMLResponse:
    """Score the chat answer under a base model, store it, and draw it marked token by token."""
    form = await request.form()
    error, status_code = None, 200
    try:
        await lens.analyse(
            generation_id, base_model=_chosen_base(form.get("base_model")), rater=rater_of(request)
        )
    except PlaygroundError as exc:
        await session.rollback()
        error, status_code = exc.message, exc.status_code
    context = lens_context(state, await lens.target(generation_id, rater_of(request)))
    context |= {"error": error}
    return fragment(request, "_token_shift.html", context, status_code)


@router.post(
    "/generations/{generation_id}/prefix-continuations",
    response_class=HTMLResponse,
    dependencies=csrf,
)
async def prefix_continuation(
    generation_id: int, request: Request, state: State, lens: LensDep, session: SessionDep
) -> HTMLResponse:
    """Let the base model continue the answer from its first k tokens; draw it when finished."""
    form = await request.form()
    error, status_code = None, 200
    try:
        raw_k = str(form.get("k") or DEFAULT_PREFIX_TOKENS).strip()
        if not (raw_k.isascii() and raw_k.isdecimal() and len(raw_k) <= 9):
            raise InvalidInput("k must be a whole number of tokens (0 or more)")
        started = await lens.continue_prefix(
            generation_id,
            k=int(raw_k),
            base_model=_chosen_base(form.get("base_model")),
            rater=rater_of(request),
        )
        await lens.runner.wait_finished([started.id])
    except PlaygroundError as exc:
        await session.rollback()
        error, status_code = exc.message, exc.status_code
    context = lens_context(state, await lens.target(generation_id, rater_of(request)))
    context |= {"error": error}
    return fragment(request, "_prefix.html", context, status_code)


@router.post(
    "/generations/{generation_id}/rendered-prompt",
    response_class=HTMLResponse,
    dependencies=csrf,
)
async def rendered_prompt(
    generation_id: int, request: Request, lens: LensDep, session: SessionDep
) -> HTMLResponse:
    """The exact string the model saw after its template, and its token count.

    A POST: the first time it asks the model server's tokenizer and stores the answer.
    """
    try:
        generation = await lens.rendered_prompt(generation_id, rater_of(request))
    except PlaygroundError as exc:
        if exc.status_code == 404:
            raise
        await session.rollback()
        retry = f"/generations/{generation_id}/rendered-prompt"
        context = {"message": exc.message, "retry": retry, "summary": "Rendered prompt: failed"}
        return fragment(request, "_lens_error.html", context, exc.status_code)
    return fragment(request, "_rendered_prompt.html", {"g": generation})

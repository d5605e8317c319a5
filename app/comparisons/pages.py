"""Hypermedia routes: the playground pages, htmx fragments, and the SSE stream of a turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sse_starlette import EventSourceResponse

from app.comparisons import forms
from app.comparisons.models import Conversation, Generation, Side, Turn
from app.comparisons.views import TurnView, conversation_views
from app.config import ModelKind
from app.errors import NotFound
from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat
from app.web.deps import ServiceDep, State
from app.web.templating import templates

# Keep-alive pings stop proxies from closing a quiet stream; a turn waits at most this long idle.
PING_SECONDS = 15


async def verify_csrf(request: Request, state: State) -> None:
    """Every state-changing page request must carry this browser's CSRF token."""
    await state.csrf.verify(request)


router = APIRouter(include_in_schema=False)


def base_names(state: State) -> tuple[str, ...]:
    """The base models the token lens may score or continue a chat answer with."""
    return state.models.names_of_kind(ModelKind.BASE)


csrf = [Depends(verify_csrf)]


def render(request: Request, state: State, name: str, context: dict[str, Any]) -> HTMLResponse:
    """A full page, carrying the CSRF token that its htmx requests send back."""
    cookie, is_new = state.csrf.browser_cookie(request)
    context = {
        **context,
        "csrf_token": state.csrf.token_for(cookie),
        "models": state.models.models,
        "notice": state.notice,
        "model_problems": state.model_problems(),
    }
    response = templates.TemplateResponse(request, name, context)
    if is_new:
        state.csrf.set_cookie(response, cookie)
    return response


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, state: State, service: ServiceDep) -> HTMLResponse:
    """Start a comparison; recent conversations below."""
    models = state.models
    base, chat = models.first_of_kind(ModelKind.BASE), models.first_of_kind(ModelKind.CHAT)
    return render(
        request,
        state,
        "index.html",
        {
            "recent": await service.recent_conversations(20),
            "defaults": SamplingParams(),
            "base_formats": list(BaseFormat),
            "default_a": (base or models.models[0]).name,
            "default_b": (chat or models.models[-1]).name,
        },
    )


@router.get("/history", response_class=HTMLResponse)
async def history(request: Request, state: State, service: ServiceDep) -> HTMLResponse:
    """Every recent conversation, newest first."""
    return render(
        request, state, "history.html", {"recent": await service.recent_conversations(200)}
    )


@router.post("/c", dependencies=csrf)
async def create_conversation(request: Request, service: ServiceDep) -> Response:
    """Start a conversation and go to its page, where both answers stream."""
    data = forms.comparison_input(await request.form())
    turn = await service.start_conversation(data)
    url = f"/c/{turn.conversation_id}"
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Location": url})
    return RedirectResponse(url, status_code=303)


@router.get("/c/{conversation_id}", response_class=HTMLResponse, name="conversation_page")
async def conversation_page(
    conversation_id: str, request: Request, state: State, service: ServiceDep
) -> HTMLResponse:
    """A conversation as it was: answers, votes and settings; the latest turn may still stream."""
    conversation = await service.get_conversation(conversation_id)
    views = conversation_views(conversation, state.runner, base_names(state))
    latest_params = SamplingParams.model_validate(conversation.turns[-1].params)
    return render(
        request,
        state,
        "conversation.html",
        {"conversation": conversation, "turns": views, "defaults": latest_params},
    )


@router.post("/c/{conversation_id}/turns", response_class=HTMLResponse, dependencies=csrf)
async def add_turn(
    conversation_id: str, request: Request, state: State, service: ServiceDep
) -> HTMLResponse:
    """Append a follow-up turn; the previous turn's footer closes its voting (out of band)."""
    data = forms.turn_input(await request.form())
    turn = await service.continue_conversation(conversation_id, data)
    conversation = await service.get_conversation(conversation_id)
    views = conversation_views(conversation, state.runner, base_names(state))
    return templates.TemplateResponse(
        request, "_new_turn.html", {"view": views[-1], "previous": views[-2], "turn": turn}
    )


@router.post("/turns/{turn_id}/stop", dependencies=csrf)
async def stop_turn(turn_id: int, service: ServiceDep) -> Response:
    """Stop both columns; each keeps its partial text, marked cancelled."""
    turn = await service.get_turn(turn_id)
    service.stop(turn)
    return Response(status_code=204)


@router.post("/turns/{turn_id}/regenerate", response_class=HTMLResponse, dependencies=csrf)
async def regenerate(
    turn_id: int, request: Request, state: State, service: ServiceDep
) -> HTMLResponse:
    """Run one side (or both) again with the same prompt and settings."""
    form = await request.form()
    side = form.get("side")
    sides = [Side.A, Side.B] if side == "both" else [Side(side)] if side in ("a", "b") else None
    if sides is None:
        raise NotFound("choose side a, b or both")
    turn = await service.get_turn(turn_id)
    await service.regenerate(turn.conversation_id, turn.number, sides)
    conversation = await service.get_conversation(turn.conversation_id)
    view = conversation_views(conversation, state.runner, base_names(state))[-1]
    return templates.TemplateResponse(request, "_turn.html", {"view": view})


@router.post("/turns/{turn_id}/vote", response_class=HTMLResponse, dependencies=csrf)
async def vote(turn_id: int, request: Request, state: State, service: ServiceDep) -> HTMLResponse:
    """Record the vote and show the footer with it."""
    turn = await service.get_turn(turn_id)
    data = forms.vote_input(await request.form())
    data = data.model_copy(update={"turn": turn.number})
    await service.vote(turn.conversation_id, data)
    conversation = await service.get_conversation(turn.conversation_id)
    views = conversation_views(conversation, state.runner, base_names(state))
    view = next(v for v in views if v.turn.id == turn_id)
    return templates.TemplateResponse(
        request, "_turn_footer.html", {"view": view, "saved_rater": data.rater}
    )


@router.get("/turns/{turn_id}/events")
async def turn_events(
    turn_id: int,
    request: Request,
    state: State,
    a: int = 0,
    b: int = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Stream both columns of a turn: coalesced text deltas, then each final column, then done."""
    offsets = {"a": max(a, 0), "b": max(b, 0)}
    if last_event_id and last_event_id.count(":") == 1:
        first, second = last_event_id.split(":")
        if first.isdigit() and second.isdigit():
            offsets = {"a": int(first), "b": int(second)}
    async with state.sessions() as session:
        turn = await session.scalar(
            select(Turn).where(Turn.id == turn_id).options(selectinload(Turn.generations))
        )
    if turn is None:
        raise NotFound(f"no turn {turn_id}")
    generation_ids = {
        side.value: g.id for side in (Side.A, Side.B) if (g := turn.current(side)) is not None
    }
    return EventSourceResponse(
        _turn_event_stream(state, turn_id, generation_ids, offsets), ping=PING_SECONDS
    )


async def _turn_event_stream(
    state: State, turn_id: int, generation_ids: dict[str, int], offsets: dict[str, int]
) -> AsyncIterator[dict[str, str]]:
    """Yield SSE events until both sides are stored as finished."""
    pending = dict(generation_ids)
    seen_live: set[str] = set()
    flush = state.settings.stream_flush_seconds
    view: TurnView | None = None

    def delta(side: str, text: str) -> dict[str, str]:
        """The text after this stream's offset for a side, escaped, as one event."""
        new_text = text[offsets[side] :]
        offsets[side] = len(text)
        return {
            "event": f"delta-{side}",
            "data": str(escape(new_text)),
            "id": f"{offsets['a']}:{offsets['b']}",
        }

    while pending:
        for side, generation_id in list(pending.items()):
            live = state.runner.snapshot(generation_id)
            if live is not None:
                seen_live.add(side)
                if len(live.text) > offsets[side]:
                    yield delta(side, live.text)
                continue
            async with state.sessions() as session:
                generation = await session.get(Generation, generation_id)
            if generation is not None and generation.finished:
                # Tokens that arrived during the last coalescing pause still go out as text, so
                # the deltas of a live stream always add up to the stored answer.
                if side in seen_live and len(generation.text) > offsets[side]:
                    yield delta(side, generation.text)
                view = await _load_view(state, turn_id)
                yield {"event": f"done-{side}", "data": _final_column(view, side)}
                del pending[side]
        if pending:
            await state.runner.wait_for_change(turn_id, PING_SECONDS)
            # Coalesce: tokens pile up, so the browser gets a few events a second, not one a token.
            await asyncio.sleep(flush)
    # The view loaded for the last column to finish is already final: no third load for the footer.
    if view is None:
        view = await _load_view(state, turn_id)
    yield {"event": "turn-done", "data": _footer(view)}


async def _load_view(state: State, turn_id: int) -> TurnView:
    async with state.sessions() as session:
        turn = await session.scalar(select(Turn).where(Turn.id == turn_id))
        if turn is None:
            raise NotFound(f"no turn {turn_id}")
        conversation = await session.scalar(
            select(Conversation)
            .where(Conversation.id == turn.conversation_id)
            .options(
                selectinload(Conversation.turns).selectinload(Turn.generations),
                selectinload(Conversation.turns).selectinload(Turn.votes),
            )
        )
    assert conversation is not None
    views = conversation_views(conversation, state.runner, base_names(state))
    return next(v for v in views if v.turn.id == turn_id)


def _final_column(view: TurnView, side: str) -> str:
    column = next(c for c in view.columns if c.side == side)
    return templates.get_template("_column.html").render(view=view, column=column)


def _footer(view: TurnView) -> str:
    return templates.get_template("_turn_footer.html").render(view=view)

"""Hypermedia routes: the playground pages, htmx fragments, and the SSE stream of a turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.comparisons import forms
from app.comparisons.deps import ServiceDep
from app.comparisons.models import MAX_MODELS, SLOTS, Conversation
from app.comparisons.queries import conversation_id_of_turn, load_conversation, load_turn
from app.comparisons.views import TurnView, conversation_views
from app.config import ModelKind
from app.errors import NotFound
from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat
from app.generation.records import Generation, GenerationStatus
from app.identity.current import current_identity
from app.web.deps import State
from app.web.pages import csrf, rater_of, remember_rater, render
from app.web.templating import templates

# Keep-alive pings stop proxies from closing a quiet stream; a turn waits at most this long idle.
PING_SECONDS = 15


router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Reader:
    """Who reads: the name that reveals blind names, whose judgements alone they see (None:
    everyone's), and the signed-in account's name (team mode; it judges as that name)."""

    rater: str | None
    only_rater: str | None = None
    account: str | None = None


def reader_of(request: Request) -> Reader:
    """Team mode: the account (a rater sees only their own judgements, an admin everyone's);
    local mode: the rater name this browser judged as last, and everyone's judgements."""
    identity = current_identity(request)
    if identity is not None:
        only = None if identity.is_admin else identity.username
        return Reader(identity.username, only, identity.username)
    return Reader(rater_of(request))


async def views_for(
    session: AsyncSession, state: State, conversation: Conversation, reader: Reader
) -> list[TurnView]:
    """Every turn drawn as this reader may see it, with the answers' stored analyses."""
    ids = [g.id for turn in conversation.turns for g in turn.generations]
    analyses = await state.analyses(session, ids)
    return conversation_views(
        conversation,
        state.runner,
        reader.rater,
        base_names(state),
        analyses,
        only_rater=reader.only_rater,
        account=reader.account,
    )


def base_names(state: State) -> tuple[str, ...]:
    """The base models the token lens may score or continue a chat answer with."""
    return state.base_model_names()


# A column's text offset when a stream (re)connects.
Offset = Annotated[int, Query(ge=0, le=10**9)]


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, state: State, service: ServiceDep) -> HTMLResponse:
    """Start a comparison; recent conversations below."""
    models = state.models
    base, chat = models.first_of_kind(ModelKind.BASE), models.first_of_kind(ModelKind.CHAT)
    defaults = [(base or models.models[0]).name, (chat or models.models[-1]).name]
    return render(
        request,
        state,
        "index.html",
        {
            "recent": await service.recent_conversations(20),
            "defaults": SamplingParams(),
            "base_formats": list(BaseFormat),
            # One picker per possible column; the first two are preselected, the rest optional.
            "picks": defaults + [""] * (MAX_MODELS - len(defaults)),
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
    views = await views_for(service.session, state, conversation, reader_of(request))
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
    views = await views_for(service.session, state, conversation, reader_of(request))
    return templates.TemplateResponse(
        request, "_new_turn.html", {"view": views[-1], "previous": views[-2], "turn": turn}
    )


@router.post("/turns/{turn_id}/stop", dependencies=csrf)
async def stop_turn(turn_id: int, request: Request, service: ServiceDep) -> Response:
    """Stop every column (or the one named by `slot`); each keeps its partial text."""
    turn = await service.get_turn(turn_id)
    conversation = await service.get_conversation(turn.conversation_id)
    slot = (await request.form()).get("slot")
    if slot is not None and conversation.participant(str(slot)) is None:
        raise NotFound(f"choose a column among {conversation.slots}")
    service.stop(conversation, turn, None if slot is None else [str(slot)])
    return Response(status_code=204)


@router.post("/turns/{turn_id}/regenerate", response_class=HTMLResponse, dependencies=csrf)
async def regenerate(
    turn_id: int, request: Request, state: State, service: ServiceDep
) -> HTMLResponse:
    """Run one column (or all of them) again with the same prompt and settings."""
    form = await request.form()
    turn = await service.get_turn(turn_id)
    conversation = await service.get_conversation(turn.conversation_id)
    choice = str(form.get("slot") or form.get("side") or "")
    slots = conversation.slots if choice in ("all", "both") else [choice]
    await service.regenerate(turn.conversation_id, turn.number, slots)
    conversation = await service.get_conversation(turn.conversation_id)
    view = (await views_for(service.session, state, conversation, reader_of(request)))[-1]
    return templates.TemplateResponse(request, "_turn.html", {"view": view})


@router.post("/turns/{turn_id}/vote", response_class=HTMLResponse, dependencies=csrf)
async def vote(turn_id: int, request: Request, state: State, service: ServiceDep) -> HTMLResponse:
    """Record the judgement and show it; a blind conversation shows its names from now on."""
    turn = await service.get_turn(turn_id)
    data = forms.vote_input(await request.form())
    data = data.model_copy(update={"turn": turn.number})
    stored = await service.judge(turn.conversation_id, data)
    rater = stored.rater
    conversation = await service.get_conversation(turn.conversation_id)
    reader = replace(reader_of(request), rater=rater)
    views = await views_for(service.session, state, conversation, reader)
    view = next(v for v in views if v.turn.id == turn_id)
    if conversation.blind:
        # Reveal in place: the whole conversation is drawn again with the names.
        response = templates.TemplateResponse(
            request,
            "_conversation_body.html",
            {"conversation": conversation, "turns": views, "saved_rater": rater,
             "saved_turn": turn_id},
        )  # fmt: skip
    else:
        response = templates.TemplateResponse(
            request, "_turn_footer.html", {"view": view, "saved_rater": rater}
        )
    if current_identity(request) is None:
        remember_rater(response, rater)
    return response


@router.get("/turns/{turn_id}/events")
async def turn_events(
    turn_id: int,
    request: Request,
    state: State,
    a: Offset = 0,
    b: Offset = 0,
    c: Offset = 0,
    d: Offset = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Stream every column of a turn: coalesced text deltas, then each final column, then done."""
    async with state.sessions() as session:
        turn = await load_turn(session, turn_id)
    slots = [slot for slot in SLOTS if turn.current(slot) is not None]
    given = {"a": a, "b": b, "c": c, "d": d}
    offsets = {slot: given[slot] for slot in slots}
    # A reconnecting EventSource sends the id of the last event it saw: one offset per column.
    resumed = (last_event_id or "").split(":")
    if len(resumed) == len(slots) and all(
        x.isascii() and x.isdecimal() and len(x) < 12 for x in resumed
    ):
        offsets = {slot: int(x) for slot, x in zip(slots, resumed, strict=True)}
    generation_ids = {slot: g.id for slot in slots if (g := turn.current(slot)) is not None}
    return EventSourceResponse(
        _turn_event_stream(state, turn_id, generation_ids, offsets, reader_of(request)),
        ping=PING_SECONDS,
    )


async def _turn_event_stream(
    state: State,
    turn_id: int,
    generation_ids: dict[str, int],
    offsets: dict[str, int],
    rater: Reader,
) -> AsyncIterator[dict[str, str] | bytes]:
    """Yield SSE events until every column is stored as finished (those of one pass at once)."""
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
            "id": ":".join(str(offset) for offset in offsets.values()),
        }

    last_sent = float("-inf")
    loop = asyncio.get_running_loop()
    events: list[dict[str, str]] = []
    while pending:
        gone: dict[int, str] = {}
        live_here: list[int] = []
        for side, generation_id in pending.items():
            live = state.runner.snapshot(generation_id)
            if live is None:
                gone[generation_id] = side
                continue
            live_here.append(generation_id)
            seen_live.add(side)
            if live.length > offsets[side]:
                last_sent = loop.time()
                events.append(delta(side, live.text))
        if events:
            yield _together(events)
            events = []
        if gone:
            async with state.sessions() as session:
                # Status and text only (not the token JSON), for every such column at once.
                stored = await session.execute(
                    select(
                        Generation.id, Generation.status, Generation.text, Generation.owner
                    ).where(Generation.id.in_(gone))
                )
                finished = []
                for gid, status, text, owner in stored.tuples():
                    if GenerationStatus(status).finished:
                        finished.append((gone[gid], text))
                    else:
                        # Running in another process: mirror its text through the fan-out.
                        state.runner.follow(gid, turn_id, owner)
            for side, text in finished:
                # Tokens that arrived during the last coalescing pause still go out as text, so
                # the deltas of a live stream always add up to the stored answer.
                if side in seen_live and len(text) > offsets[side]:
                    events.append(delta(side, text))
            if finished:
                # One view for every column that finished meanwhile (often all of them).
                view = await _load_view(state, turn_id, rater)
                for side, _ in sorted(finished):
                    events.append({"event": f"done-{side}", "data": _final_column(view, side)})
                    del pending[side]
            if events:
                yield _together(events)
                events = []
        if pending:
            # A column that ended while this pass awaited the database may have taken the
            # turn's signal with it (the last one to end does): look again at once instead
            # of waiting for a wake-up that will not come (it used to cost a 1 s poll).
            if not any(state.runner.snapshot(gid) is None for gid in live_here):
                await state.runner.wait_for_change(turn_id, PING_SECONDS)
            # Coalesce: at most one event per column per flush interval, so the browser gets a
            # few events a second, not one a token; but the first text goes out at once.
            pause = last_sent + flush - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
    # The view loaded for the last column to finish is already final: no third load for the footer.
    if view is None:
        view = await _load_view(state, turn_id, rater)
    yield {"event": "turn-done", "data": _footer(view)}


def _together(events: list[dict[str, str]]) -> bytes:
    """Several events as one chunk of the stream: the same bytes as one by one, but one send
    (the response's per-send timeout scope, the middlewares, a socket write) instead of one
    per column, which at many streams at once was a visible share of the relay's cost."""
    sep = EventSourceResponse.DEFAULT_SEPARATOR
    return b"".join(
        ServerSentEvent(event["data"], event=event["event"], id=event.get("id"), sep=sep).encode()
        for event in events
    )


async def _load_view(state: State, turn_id: int, rater: Reader) -> TurnView:
    async with state.sessions() as session:
        conversation_id = await conversation_id_of_turn(session, turn_id)
        conversation = await load_conversation(session, conversation_id)
        views = await views_for(session, state, conversation, rater)
    return next(v for v in views if v.turn.id == turn_id)


def _final_column(view: TurnView, slot: str) -> str:
    column = next(c for c in view.columns if c.slot == slot)
    return templates.get_template("_column.html").render(view=view, column=column)


def _footer(view: TurnView) -> str:
    return templates.get_template("_turn_footer.html").render(view=view)

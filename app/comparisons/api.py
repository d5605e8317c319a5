"""JSON API for scripts: run comparisons, add turns, vote, read conversations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.comparisons.deps import ServiceDep
from app.comparisons.judging import pair_outcome, ranking_of
from app.comparisons.models import Conversation, Judgement, Slot, Turn
from app.comparisons.recording import Recorded
from app.comparisons.schemas import (
    ComparisonInput,
    ConversationOut,
    GenerationOut,
    ParticipantOut,
    TurnInput,
    TurnOut,
    VoteInput,
    VoteOut,
    generation_out,
)
from app.comparisons.views import label, revealed_to
from app.generation.records import Generation
from app.web.deps import State
from app.web.guards import require_json

router = APIRouter(prefix="/api/v1", tags=["comparisons"])
json_body = [Depends(require_json)]


@router.post(
    "/comparisons",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationOut,
    dependencies=json_body,
)
async def create_comparison(
    data: ComparisonInput, service: ServiceDep, state: State
) -> ConversationOut:
    """Run one prompt on every model (waits for every answer) and return the conversation."""
    turn = await service.start_conversation(data)
    return await _finish_and_read(service, state, turn)


@router.post(
    "/comparisons/{conversation_id}/turns",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationOut,
    dependencies=json_body,
)
async def add_turn(
    conversation_id: str, data: TurnInput, service: ServiceDep, state: State
) -> ConversationOut:
    """Ask a follow-up: each model sees the conversation with its own earlier answers."""
    turn = await service.continue_conversation(conversation_id, data)
    return await _finish_and_read(service, state, turn)


@router.post(
    "/comparisons/{conversation_id}/votes",
    status_code=status.HTTP_201_CREATED,
    response_model=VoteOut,
    dependencies=json_body,
)
async def vote(conversation_id: str, data: VoteInput, service: ServiceDep) -> VoteOut:
    """Judge the answers: `winner` (two answers), `ranking` or `all_bad`; the same rater
    judging a turn again replaces the earlier judgement."""
    stored = await service.judge(conversation_id, data)
    return vote_out(stored, stored.turn_number)


@router.get("/comparisons/{conversation_id}", response_model=ConversationOut)
async def get_comparison(
    conversation_id: str,
    service: ServiceDep,
    state: State,
    rater: Annotated[str | None, Query(max_length=64, description=RATER_HELP)] = None,
) -> ConversationOut:
    """A conversation with every turn, its current answers and the judgements."""
    conversation = await service.get_conversation(conversation_id)
    return await read_conversation(service, state, conversation, service.viewer(rater))


RATER_HELP = "a blind comparison shows names to a rater who has judged it"


async def _finish_and_read(service: ServiceDep, state: State, turn: Turn) -> ConversationOut:
    await service.runner.wait_finished(g.id for g in turn.generations)
    conversation = await service.get_conversation(turn.conversation_id)
    return await read_conversation(service, state, conversation, service.viewer(None))


async def read_conversation(
    service: ServiceDep, state: State, conversation: Conversation, rater: str | None
) -> ConversationOut:
    """A conversation as the API shows it to this rater, with token-shift ratios."""
    ids = [g.id for t in conversation.turns for g in t.generations]
    analyses = await state.analyses(service.session, ids)
    ratios = {gid: float(a.shifted_ratio) for gid, a in analyses.items()}
    only = service.shown_rater()
    return conversation_out(conversation, f"/c/{conversation.id}", ratios, rater, only)


def vote_out(judgement: Judgement | Recorded, turn_number: int) -> VoteOut:
    """A judgement as the API shows it."""
    ranks = {e.slot: e.rank for e in judgement.entries}
    slots = sorted(ranks)
    winner = None
    if len(slots) == 2:
        first, second = (judgement.entry(s) for s in slots)
        assert first is not None and second is not None
        winner = pair_outcome(first.rank, second.rank, judgement.all_bad).value
    scores = {e.slot: e.score for e in judgement.entries if e.score is not None}
    ids = judgement.generation_ids
    return VoteOut(
        id=judgement.id,
        turn=turn_number,
        rater=judgement.rater,
        winner=winner,
        ranking=None if judgement.all_bad else ranking_of(ranks),
        all_bad=judgement.all_bad,
        scores=scores,
        score_a=scores.get("a"),
        score_b=scores.get("b"),
        comment=judgement.comment,
        generation_ids=ids,
        positions={e.slot: e.position for e in judgement.entries},
        generation_a_id=ids.get("a"),
        generation_b_id=ids.get("b"),
        blind=judgement.blind,
        created_at=judgement.created_at,
        updated_at=judgement.updated_at,
    )


def conversation_out(
    conversation: Conversation,
    url: str,
    ratios: dict[int, float],
    rater: str | None,
    only_rater: str | None = None,
) -> ConversationOut:
    """A conversation as the API shows it; a blind one hides names until the rater judged;
    with `only_rater` (a rater account reading) only that rater's judgements are listed."""
    revealed = revealed_to(conversation, rater)
    participants = conversation.participants
    labels = {p.slot: label(p, revealed) for p in participants}
    positions = {p.slot: p.position for p in participants}

    def out(generation: Generation) -> GenerationOut:
        return generation_out(
            generation,
            ratios.get(generation.id),
            label=labels.get(generation.slot, ""),
            position=positions.get(generation.slot),
            revealed=revealed,
        )

    turns = []
    for turn in conversation.turns:
        current = [g for p in participants if (g := turn.current(p.slot)) is not None]
        by_slot = {g.slot: out(g) for g in current}
        turns.append(
            TurnOut(
                id=turn.id,
                number=turn.number,
                prompt=turn.prompt,
                params=turn.params,
                generations=[by_slot[g.slot] for g in current],
                a=by_slot.get("a"),
                b=by_slot.get("b"),
                # Others' verdicts (and rater names) wait for the reveal too.
                votes=[
                    vote_out(j, turn.number)
                    for j in turn.judgements
                    if revealed and only_rater in (None, j.rater)
                ],
                continuations=[
                    out(g) for g in turn.generations if g.slot == Slot.PREFIX and revealed
                ],
            )
        )
    models = [
        ParticipantOut(
            slot=p.slot,
            position=p.position,
            label=labels[p.slot],
            name=p.model_name if revealed else None,
            kind=p.model_kind if revealed else None,
        )
        for p in participants
    ]
    by_slot_model = {m.slot: m for m in models}
    return ConversationOut(
        id=conversation.id,
        url=url,
        created_at=conversation.created_at,
        title=conversation.title,
        system=conversation.system_prompt,
        base_format=conversation.base_format,
        blind=conversation.blind,
        revealed=revealed,
        models=models,
        model_a=by_slot_model["a"].name if "a" in by_slot_model else None,
        kind_a=by_slot_model["a"].kind if "a" in by_slot_model else None,
        model_b=by_slot_model["b"].name if "b" in by_slot_model else None,
        kind_b=by_slot_model["b"].kind if "b" in by_slot_model else None,
        turns=turns,
    )

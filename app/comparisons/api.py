"""JSON API for scripts: run comparisons, add turns, vote, read conversations."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, status

from app.comparisons.models import Conversation, Side, Turn, Vote
from app.comparisons.schemas import (
    ComparisonInput,
    ConversationOut,
    TurnInput,
    TurnOut,
    VoteInput,
    VoteOut,
    generation_out,
)
from app.web.deps import ServiceDep


async def require_json(request: Request) -> None:
    """Only JSON bodies: a cross-site HTML form cannot send application/json without CORS."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json"
        )


router = APIRouter(prefix="/api/v1", tags=["comparisons"])
json_body = [Depends(require_json)]


@router.post(
    "/comparisons",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationOut,
    dependencies=json_body,
)
async def create_comparison(data: ComparisonInput, service: ServiceDep) -> ConversationOut:
    """Run one prompt on both models (waits for both answers) and return the conversation."""
    turn = await service.start_conversation(data)
    return await _finish_and_read(service, turn)


@router.post(
    "/comparisons/{conversation_id}/turns",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationOut,
    dependencies=json_body,
)
async def add_turn(conversation_id: str, data: TurnInput, service: ServiceDep) -> ConversationOut:
    """Ask a follow-up: each model sees the conversation with its own earlier answers."""
    turn = await service.continue_conversation(conversation_id, data)
    return await _finish_and_read(service, turn)


@router.post(
    "/comparisons/{conversation_id}/votes",
    status_code=status.HTTP_201_CREATED,
    response_model=VoteOut,
    dependencies=json_body,
)
async def vote(conversation_id: str, data: VoteInput, service: ServiceDep) -> VoteOut:
    """Record which answer is better; the same rater voting again on a turn overwrites."""
    stored = await service.vote(conversation_id, data)
    turn = await service.get_turn(stored.turn_id)
    return vote_out(stored, turn.number)


@router.get("/comparisons/{conversation_id}", response_model=ConversationOut)
async def get_comparison(conversation_id: str, service: ServiceDep) -> ConversationOut:
    """A conversation with every turn, both current answers and the votes."""
    conversation = await service.get_conversation(conversation_id)
    return conversation_out(conversation, f"/c/{conversation.id}")


async def _finish_and_read(service: ServiceDep, turn: Turn) -> ConversationOut:
    await service.runner.wait_finished(g.id for g in turn.generations)
    conversation = await service.get_conversation(turn.conversation_id)
    return conversation_out(conversation, f"/c/{conversation.id}")


def vote_out(vote: Vote, turn_number: int) -> VoteOut:
    """A vote as the API shows it."""
    return VoteOut(
        id=vote.id,
        turn=turn_number,
        rater=vote.rater,
        winner=vote.winner,
        score_a=vote.score_a,
        score_b=vote.score_b,
        comment=vote.comment,
        generation_a_id=vote.generation_a_id,
        generation_b_id=vote.generation_b_id,
        created_at=vote.created_at,
        updated_at=vote.updated_at,
    )


def conversation_out(conversation: Conversation, url: str) -> ConversationOut:
    """A conversation as the API shows it."""
    turns = []
    for turn in conversation.turns:
        gen_a, gen_b = turn.current(Side.A), turn.current(Side.B)
        turns.append(
            TurnOut(
                id=turn.id,
                number=turn.number,
                prompt=turn.prompt,
                params=turn.params,
                a=generation_out(gen_a) if gen_a else None,
                b=generation_out(gen_b) if gen_b else None,
                votes=[vote_out(v, turn.number) for v in turn.votes],
                continuations=[
                    generation_out(g) for g in turn.generations if g.side == Side.PREFIX
                ],
            )
        )
    return ConversationOut(
        id=conversation.id,
        url=url,
        created_at=conversation.created_at,
        title=conversation.title,
        system=conversation.system_prompt,
        base_format=conversation.base_format,
        model_a=conversation.model_a,
        kind_a=conversation.kind_a,
        model_b=conversation.model_b,
        kind_b=conversation.kind_b,
        turns=turns,
    )

"""Handing out items: the next item for a rater, per-rater answer order, and the conversation
an item is judged in (made the first time the item is handed out).

Race safety: the whole choice runs in one short transaction that first locks the task's row
(lock_task; also across replicas on one database), and (task, item, rater) is unique. So two
raters asking at once see each other's leases, and an item goes to someone else only when it
still needs more judgements than it has judges and active leases.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.annotation import queries
from app.annotation.models import LEASE_SECONDS, Assignment, AssignmentState, RatingTask
from app.comparisons.models import Conversation, Participant, Turn
from app.generation.records import Generation
from app.runs.models import Run, RunItem

TITLE_CHARS = 80
# In the queue, a-d name the answers in the order this rater was shown them.
SHOWN_LETTERS = ("a", "b", "c", "d")


def display_order(
    task: RatingTask, run_item_id: int, rater: str, slots: Sequence[str]
) -> list[str]:
    """The slots in the order this rater sees them: shuffled per rater and item (stable, so a
    reload shows the same order), or slot order when random positions are off."""
    if not task.random_positions:
        return list(slots)
    return random.Random(f"{task.id}/{run_item_id}/{rater}").sample(list(slots), len(slots))


async def lock_task(session: AsyncSession, task: RatingTask) -> None:
    """Hold the task's row lock until commit, before reading anything else.

    A write (a no-op update), not SELECT ... FOR UPDATE: SQLite's driver opens its transaction
    only at the first write, so reads before it would each see their own moment and two
    replicas could hand out the same item; a write first takes SQLite's one writer lock (and
    PostgreSQL's row lock) and every read after it sees the latest commits."""
    await session.execute(
        update(RatingTask)
        .where(RatingTask.id == task.id)
        .values(id=RatingTask.id)
        .execution_options(synchronize_session=False)
    )


async def next_for(
    session: AsyncSession, task: RatingTask, run: Run, rater: str, now: datetime
) -> Assignment | None:
    """The rater's current item (its lease renewed), else a new one; None when nothing is left
    for them. Runs inside the caller's transaction, after lock_task."""
    rows = await queries.assignments(session, task)
    mine = {a.run_item_id: a for a in rows if a.rater == rater}
    expires = now + timedelta(seconds=LEASE_SECONDS)
    held = [a for a in mine.values() if a.state == AssignmentState.OPEN and a.expires_at > now]
    judged = await queries.judges_by_item(session, run.id)
    held = [a for a in held if rater not in judged.get(a.run_item_id, set())]
    if held:
        current = min(held, key=lambda a: a.assigned_at)
        current.expires_at = expires
        return current
    leases = queries.active_leases(rows, now)
    best: tuple[bool, int, int] | None = None
    for position, item_id in enumerate(await queries.ready_items(session, run)):
        judges = judged.get(item_id, set())
        own = mine.get(item_id)
        if rater in judges or (own is not None and own.state != AssignmentState.OPEN):
            continue
        others = leases.get(item_id, set()) - judges - {rater}
        if len(judges) + len(others) >= task.overlap:
            continue
        # Items nobody else holds first, then in set order.
        key = (bool(others), position, item_id)
        if best is None or key < best:
            best = key
    if best is None:
        return None
    item_id = best[2]
    assignment = mine.get(item_id)
    if assignment is None:
        assignment = Assignment(task_id=task.id, run_item_id=item_id, rater=rater)
        session.add(assignment)
    assignment.state = AssignmentState.OPEN
    assignment.assigned_at = now
    assignment.expires_at = expires
    await session.flush()
    await conversation_for(session, task, run, item_id)
    return assignment


async def conversation_for(
    session: AsyncSession, task: RatingTask, run: Run, run_item_id: int
) -> Conversation:
    """The conversation an item is judged in, made on first use: one participant per model,
    one turn whose answers are the item's current answers (they keep their run item too)."""
    existing: Conversation | None = await session.scalar(
        select(Conversation).where(Conversation.run_item_id == run_item_id)
    )
    if existing is not None:
        return existing
    item = await session.get(
        RunItem,
        run_item_id,
        options=[selectinload(RunItem.prompt_item), selectinload(RunItem.generations)],
    )
    assert item is not None
    answers = [item.current(slot) for slot in run.slots]
    positions = list(range(len(answers)))
    if task.random_positions:
        random.shuffle(positions)
    prompt = item.prompt_item
    conversation = Conversation(
        title=_title(prompt.prompt),
        system_prompt=prompt.system,
        base_format=run.base_format,
        blind=task.blind,
        run_item_id=run_item_id,
    )
    conversation.participants = [
        Participant(slot=slot, position=pos, model_name=name, model_kind=g.model_kind if g else "")
        for slot, name, pos, g in zip(run.slots, run.models, positions, answers, strict=True)
    ]
    turn = Turn(number=1, prompt=prompt.prompt, params=run.params)
    conversation.turns = [turn]
    session.add(conversation)
    # A concurrent maker of the same item fails here (unique run_item_id) and is retried.
    await session.flush()
    ids = [g.id for g in answers if g is not None]
    await session.execute(update(Generation).where(Generation.id.in_(ids)).values(turn_id=turn.id))
    # The turn was built with no answers; let it read them from the database when asked.
    session.expire(turn, ["generations"])
    return conversation


def _title(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"

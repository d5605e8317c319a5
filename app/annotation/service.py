"""Rating-task use cases shared by the queue page and the JSON API.

Queue judgements are ordinary judgements of the item's conversation (app.comparisons.voting);
what the queue adds is the lease of each item to one rater and the per-rater answer order.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.annotation import assign, queries
from app.annotation.models import Assignment, AssignmentState, RatingTask
from app.annotation.schemas import AnswerOut, JudgedOut, QueueItemOut, TaskInput
from app.comparisons import judging, voting
from app.comparisons.models import Conversation, Judgement, Turn, Winner
from app.comparisons.schemas import VoteInput
from app.config import Settings
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.generation.records import Generation
from app.runs.models import Run, RunItem


@dataclass
class AnnotationService:
    """Opens runs for rating, hands out items, records judgements and skips (each commits)."""

    session: AsyncSession
    settings: Settings

    async def run(self, run_id: int) -> Run:
        """A run, or 404."""
        run = await self.session.get(Run, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        return run

    async def task(self, run_id: int) -> tuple[RatingTask, Run]:
        """A run's rating task, or 404 if it was not opened for rating."""
        run = await self.run(run_id)
        task = await queries.task_of(self.session, run_id)
        if task is None:
            raise NotFound(f"run {run_id} is not open for rating: open it from the run page")
        return task, run

    async def open_task(self, run_id: int, data: TaskInput) -> tuple[RatingTask, Run]:
        """Open a run for rating, or change the settings of its task."""
        run = await self.run(run_id)
        task = await queries.task_of(self.session, run_id)
        if task is None:
            task = RatingTask(run_id=run_id, created_at=utcnow())
            self.session.add(task)
        task.overlap = data.overlap
        task.guidelines = data.guidelines.strip()
        task.reveal_names = data.reveal_names_after_judging
        task.blind = data.blind
        task.random_positions = data.random_positions
        task.updated_at = utcnow()
        # Items already handed out are judged as the task is now: their judgements say blind
        # exactly when the names were hidden.
        await self.session.execute(
            update(Conversation)
            .where(Conversation.run_item_id.in_(select(RunItem.id).where(RunItem.run_id == run_id)))
            .values(blind=data.blind)
        )
        await self.session.commit()
        return task, run

    async def next_item(self, task: RatingTask, run: Run, rater: str) -> QueueItemOut | None:
        """The rater's current or next item (held for them for a while), or None."""

        async def attempt() -> int | None:
            await assign.lock_task(self.session, task)
            assignment = await assign.next_for(self.session, task, run, rater, utcnow())
            return None if assignment is None else assignment.id

        assignment_id = await voting.with_retries(self.session, attempt)
        if assignment_id is None:
            return None
        assignment = await self.session.get(Assignment, assignment_id)
        assert assignment is not None
        return await self.shown(task, run, assignment, rater)

    async def shown(
        self, task: RatingTask, run: Run, assignment: Assignment, rater: str
    ) -> QueueItemOut:
        """An assigned item as this rater sees it: prompt, answers in their order."""
        item = await self.session.get(
            RunItem, assignment.run_item_id, options=[selectinload(RunItem.prompt_item)]
        )
        assert item is not None
        answers = await self._answers(item.id)
        order = assign.display_order(task, item.id, rater, run.slots)
        shown = []
        for number, slot in enumerate(order, start=1):
            generation = answers[slot]
            shown.append(
                AnswerOut(
                    answer=assign.SHOWN_LETTERS[number - 1],
                    number=number,
                    label=generation.model_name if not task.blind else f"Model {number}",
                    # Ids follow model order within an item: blind, they would give it away.
                    generation_id=None if task.blind else generation.id,
                    text=generation.text,
                    model=None if task.blind else generation.model_name,
                )
            )
        prompt = item.prompt_item
        return QueueItemOut(
            run_item_id=item.id,
            item=prompt.key,
            prompt=prompt.prompt,
            system=prompt.system,
            answers=shown,
            expires_at=assignment.expires_at,
        )

    async def judge(
        self, task: RatingTask, run: Run, run_item_id: int, rater: str, data: VoteInput
    ) -> JudgedOut:
        """Record the rater's judgement of an item they were given (a-d: the answers in the
        order they saw them); the same rater judging again replaces it. Commits."""
        comment = (data.comment or "").strip() or None
        if comment is not None and len(comment) > self.settings.max_comment_chars:
            raise InvalidInput(f"comment is too long (max {self.settings.max_comment_chars})")
        if data.turn not in (None, 1):
            raise InvalidInput("a queue item has one turn: leave `turn` out")
        order = assign.display_order(task, run_item_id, rater, run.slots)
        to_slot = dict(zip(assign.SHOWN_LETTERS, order, strict=False))

        async def attempt() -> Judgement:
            assignment = await self._assignment(task, run_item_id, rater)
            if assignment is None:
                raise Conflict("this item was not given to you: ask for the next item first")
            conversation_id = await self.session.scalar(
                select(Conversation.id).where(Conversation.run_item_id == run_item_id)
            )
            if conversation_id is None:
                raise NotFound(f"item {run_item_id} has no rating conversation")
            target = await voting.load_target(self.session, conversation_id, None)
            seen = data.seen_ids()
            if seen is not None and {to_slot.get(k, k): v for k, v in seen.items()} != (
                target.answers
            ):
                raise Conflict("these are not the answers of this item: reload the queue")
            ranks, scores = _ranks(data, order, to_slot), _scores(data, to_slot)
            verdict = voting.Verdict(rater, ranks, scores, comment)
            judgement = await voting.upsert(self.session, target, verdict)
            # Record where this rater saw each answer (the order is per rater here).
            for entry in judgement.entries:
                entry.position = order.index(entry.slot)
            assignment.state = AssignmentState.DONE
            assignment.finished_at = utcnow()
            return judgement

        judgement = await voting.with_retries(self.session, attempt)
        judged = await queries.judges_by_item(self.session, run.id)
        ranks = {letter: judgement.entry(slot) for letter, slot in to_slot.items()}
        ranking = judging.ranking_of({k: e.rank for k, e in ranks.items() if e is not None})
        names = dict(zip(run.slots, run.models, strict=True))
        return JudgedOut(
            run_item_id=run_item_id,
            rater=rater,
            ranking=None if judgement.all_bad else ranking,
            all_bad=judgement.all_bad,
            blind=judgement.blind,
            item_complete=len(judged.get(run_item_id, set())) >= task.overlap,
            models=(
                {letter: names[slot] for letter, slot in to_slot.items()}
                if task.reveal_names or not task.blind
                else None
            ),
        )

    async def skip(self, task: RatingTask, run_item_id: int, rater: str) -> None:
        """Skip an item given to the rater: it goes to others and never back to them."""
        assignment = await self._assignment(task, run_item_id, rater)
        if assignment is None:
            raise Conflict("this item was not given to you: ask for the next item first")
        if assignment.state == AssignmentState.DONE:
            raise Conflict("you have judged this item already")
        assignment.state = AssignmentState.SKIPPED
        assignment.finished_at = utcnow()
        await self.session.commit()

    async def recap(
        self, task: RatingTask, run: Run, run_item_id: int, rater: str
    ) -> list[tuple[int, str, int | None]] | None:
        """After judging, when names may show: (number shown, model, rank) of each answer."""
        if task.blind and not task.reveal_names:
            return None
        judgement = await self.session.scalar(
            select(Judgement)
            .join(Turn, Judgement.turn_id == Turn.id)
            .join(Conversation, Turn.conversation_id == Conversation.id)
            .join(RunItem, Conversation.run_item_id == RunItem.id)
            # Another run's item: its task may hide the names this one shows.
            .where(RunItem.run_id == run.id)
            .where(Conversation.run_item_id == run_item_id, Judgement.rater == rater)
        )
        if judgement is None:
            return None
        names = dict(zip(run.slots, run.models, strict=True))
        order = assign.display_order(task, run_item_id, rater, run.slots)
        return [
            (number, names[slot], entry.rank if (entry := judgement.entry(slot)) else None)
            for number, slot in enumerate(order, start=1)
        ]

    async def progress(self, task: RatingTask, run: Run) -> queries.TaskProgress:
        """The task's figures, overall and per rater."""
        return await queries.progress(self.session, task, run)

    async def _assignment(
        self, task: RatingTask, run_item_id: int, rater: str
    ) -> Assignment | None:
        assignment: Assignment | None = await self.session.scalar(
            select(Assignment)
            .where(
                Assignment.task_id == task.id,
                Assignment.run_item_id == run_item_id,
                Assignment.rater == rater,
            )
            .execution_options(populate_existing=True)
        )
        return assignment

    async def _answers(self, run_item_id: int) -> dict[str, Generation]:
        """The answers of the item's conversation, by slot."""
        rows = await self.session.scalars(
            select(Generation)
            .join(Turn, Generation.turn_id == Turn.id)
            .join(Conversation, Turn.conversation_id == Conversation.id)
            .where(Conversation.run_item_id == run_item_id, Generation.is_current)
            .where(Generation.slot != "p")
        )
        return {g.slot: g for g in rows}


def _ranks(data: VoteInput, order: list[str], to_slot: dict[str, str]) -> judging.Ranks:
    """The verdict in slots: a-d in the input are the answers in the rater's order."""
    if data.winner is not None:
        winner = data.winner
        if len(order) == 2 and winner in (Winner.A, Winner.B):
            winner = Winner(to_slot[winner.value])
        return judging.ranks_from_winner(winner, order)
    if data.ranking is not None:
        ranking = [[to_slot.get(letter, letter) for letter in group] for group in data.ranking]
        return judging.ranks_from_ranking(ranking, order)
    return dict.fromkeys(order)


def _scores(data: VoteInput, to_slot: dict[str, str]) -> dict[str, int]:
    scores = data.all_scores()
    unknown = sorted(set(scores) - set(to_slot))
    if unknown:
        raise InvalidInput(f"scores: {unknown} are not answers of this item")
    return {to_slot[letter]: score for letter, score in scores.items()}

"""Score a run's answers (lazily, idempotently) and gather them as a right/wrong table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.forgetting import queries
from app.forgetting.scorers import SCORER_VERSION, Score, score
from app.generation.records import Generation, GenerationStatus
from app.runs import queries as run_queries
from app.runs.models import PromptItem, Run
from app.runs.queries import ResultRow


@dataclass
class ScoredItem:
    """One item with a reference: its models' latest answers and whether each is right."""

    position: int
    item: PromptItem
    answers: list[Generation | None]
    # None: that model has no finished answer (pending or failed), so it cannot be scored.
    correct: list[bool | None]
    details: list[str]

    @property
    def complete(self) -> bool:
        """Every model's answer is scored."""
        return all(c is not None for c in self.correct)


@dataclass
class ScoredRun:
    """A run's items with references, scored; and how many items had none."""

    run: Run
    items: list[ScoredItem] = field(default_factory=list)
    without_reference: int = 0


async def get_run(session: AsyncSession, run_id: int) -> Run:
    """A run, or a 404."""
    run = await session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


def _score_all(work: list[tuple[dict[str, Any], str]]) -> list[Score]:
    # Run in a worker thread: a user's slow regex must not stall the event loop.
    return [score(reference, text) for reference, text in work]


async def scores_of(
    session: AsyncSession, answers: list[tuple[dict[str, Any], Generation]]
) -> dict[int, Score]:
    """Scores of finished answers (reference, answer) by generation id: stored ones read,
    missing or outdated ones computed in a thread, stored and committed."""
    done = [(ref, a) for ref, a in answers if a.status == GenerationStatus.DONE]
    have = await queries.stored(session, [a.id for _, a in done])
    scores = {
        a.id: Score(have[a.id].correct, have[a.id].detail)
        for _, a in done
        if a.id in have and have[a.id].scorer_version == SCORER_VERSION
    }
    missing = [(ref, a) for ref, a in done if a.id not in scores]
    fresh = await asyncio.to_thread(_score_all, [(ref, a.text) for ref, a in missing])
    new = {a.id: found for (_, a), found in zip(missing, fresh, strict=True)}
    if new:
        await queries.save(session, new, SCORER_VERSION)
        await session.commit()
    return scores | new


async def marks(session: AsyncSession, rows: list[ResultRow]) -> dict[int, bool]:
    """Right or wrong for each shown answer whose item has a reference, by generation id."""
    answers = [
        (dict(row.item.reference), answer)
        for row in rows
        if row.item.reference
        for answer in row.answers
        if answer is not None
    ]
    return {gid: s.correct for gid, s in (await scores_of(session, answers)).items()}


async def score_run(session: AsyncSession, run: Run) -> ScoredRun:
    """Every finished answer of the run scored (see scores_of), gathered item by item."""
    result = ScoredRun(run)
    for row in await run_queries.results(session, run, limit=None):
        if not row.item.reference:
            result.without_reference += 1
            continue
        blank: list[bool | None] = [None] * len(row.answers)
        result.items.append(
            ScoredItem(row.position, row.item, row.answers, blank, [""] * len(row.answers))
        )
    answers = [
        (dict(item.item.reference or {}), answer)
        for item in result.items
        for answer in item.answers
        if answer is not None
    ]
    scores = await scores_of(session, answers)
    for item in result.items:
        for index, answer in enumerate(item.answers):
            found = scores.get(answer.id) if answer is not None else None
            if found is not None:
                item.correct[index] = found.correct
                item.details[index] = found.detail
    return result

"""Which judgements count: the filters the leaderboard and the training exports share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BeforeValidator, Field, StringConstraints
from sqlalchemy import or_, select

from app.comparisons.models import Conversation, Judgement, Turn
from app.errors import InvalidInput
from app.runs.models import PromptSet, Run, RunItem
from app.text import CleanText


class Blind(StrEnum):
    """Only judgements made blind (the Arena default), or any judgement."""

    ONLY = "only"
    ANY = "any"


@dataclass(frozen=True)
class Filters:
    """Blind only or any, one rater, a window on the judgement's last change, and one prompt
    set or batch run (judgements made in its annotation queue)."""

    blind: Blind = Blind.ONLY
    rater: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    prompt_set: str | None = None
    run: int | None = None

    def apply(self, statement: Any) -> Any:
        """The statement (which must select from judgements) with these conditions added."""
        if self.blind is Blind.ONLY:
            statement = statement.where(Judgement.blind.is_(True))
        if self.rater is not None:
            statement = statement.where(Judgement.rater == self.rater)
        if self.since is not None:
            statement = statement.where(Judgement.updated_at >= self.since)
        if self.until is not None:
            statement = statement.where(Judgement.updated_at < self.until)
        if self.prompt_set is not None or self.run is not None:
            statement = statement.where(Judgement.turn_id.in_(self._run_turns()))
        return statement

    def _run_turns(self) -> Any:
        """The turns of the queue conversations of the chosen run or prompt set."""
        turns = (
            select(Turn.id)
            .join(Conversation, Conversation.id == Turn.conversation_id)
            .join(RunItem, RunItem.id == Conversation.run_item_id)
        )
        if self.run is not None:
            turns = turns.where(RunItem.run_id == self.run)
        if self.prompt_set is not None:
            named = PromptSet.name == self.prompt_set
            if self.prompt_set.isdecimal() and len(self.prompt_set) < 10:
                named = or_(named, PromptSet.id == int(self.prompt_set))
            turns = turns.join(Run, Run.id == RunItem.run_id).where(
                Run.prompt_set_id.in_(select(PromptSet.id).where(named))
            )
        return turns

    def query(self) -> dict[str, str]:
        """As query parameters (for links that keep the same filters)."""
        values = {
            "blind": self.blind.value,
            "rater": self.rater,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "prompt_set": self.prompt_set,
            "run": str(self.run) if self.run is not None else None,
        }
        return {k: v for k, v in values.items() if v is not None}


def _utc(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC; one that cannot be (past year 9999) is a 422."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(f"{moment.isoformat()} is out of range in UTC") from exc


def _blank_is_none(value: object) -> object:
    """An empty field of the page's filter form means no filter."""
    return None if value == "" else value


Blank = BeforeValidator(_blank_is_none)
RaterQuery = Annotated[
    Annotated[str, StringConstraints(max_length=64), CleanText] | None,
    Blank,
    Query(description="Only this rater's judgements"),
]
SinceQuery = Annotated[
    datetime | None,
    Blank,
    Query(description="Judgements last changed at or after this ISO datetime (UTC if naive)"),
]
PromptSetQuery = Annotated[
    Annotated[str, StringConstraints(max_length=100), CleanText] | None,
    Blank,
    Query(description="Only judgements made in the annotation queues of this prompt set's runs"),
]
RunQuery = Annotated[
    Annotated[int, Field(ge=1, le=2**31 - 1)] | None,
    Blank,
    Query(description="Only judgements made in this batch run's annotation queue"),
]
UntilQuery = Annotated[
    datetime | None,
    Blank,
    Query(description="Judgements last changed before this ISO datetime (UTC if naive)"),
]


def leaderboard_filters(
    rater: RaterQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    prompt_set: PromptSetQuery = None,
    run: RunQuery = None,
    blind: Annotated[
        Blind, Query(description="`only` blind judgements (default, as Arena) or `any`")
    ] = Blind.ONLY,
) -> Filters:
    """The leaderboard's filters: blind judgements only unless asked."""
    return _filters(blind, rater, since, until, prompt_set, run)


def export_filters(
    rater: RaterQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    prompt_set: PromptSetQuery = None,
    run: RunQuery = None,
    blind: Annotated[
        Blind, Query(description="`any` judgement (default) or `only` blind ones")
    ] = Blind.ANY,
) -> Filters:
    """The training exports' filters: any judgement unless asked (a preference is training
    data whether or not the rater knew the models)."""
    return _filters(blind, rater, since, until, prompt_set, run)


def _filters(
    blind: Blind,
    rater: str | None,
    since: datetime | None,
    until: datetime | None,
    prompt_set: str | None,
    run: int | None,
) -> Filters:
    """Filters with the window in UTC (checked here, before any answer starts)."""
    return Filters(
        blind=blind,
        rater=rater,
        since=_utc(since) if since else None,
        until=_utc(until) if until else None,
        prompt_set=prompt_set,
        run=run,
    )


LeaderboardFilters = Annotated[Filters, Depends(leaderboard_filters)]
ExportFilters = Annotated[Filters, Depends(export_filters)]

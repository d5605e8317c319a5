"""Which judgements count: the filters the leaderboard and the training exports share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BeforeValidator, StringConstraints

from app.comparisons.models import Judgement
from app.errors import InvalidInput
from app.text import CleanText


class Blind(StrEnum):
    """Only judgements made blind (the Arena default), or any judgement."""

    ONLY = "only"
    ANY = "any"


@dataclass(frozen=True)
class Filters:
    """Blind only or any, one rater, and a window on the judgement's last change."""

    blind: Blind = Blind.ONLY
    rater: str | None = None
    since: datetime | None = None
    until: datetime | None = None

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
        return statement

    def query(self) -> dict[str, str]:
        """As query parameters (for links that keep the same filters)."""
        values = {
            "blind": self.blind.value,
            "rater": self.rater,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
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
UntilQuery = Annotated[
    datetime | None,
    Blank,
    Query(description="Judgements last changed before this ISO datetime (UTC if naive)"),
]


def leaderboard_filters(
    rater: RaterQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    blind: Annotated[
        Blind, Query(description="`only` blind judgements (default, as Arena) or `any`")
    ] = Blind.ONLY,
) -> Filters:
    """The leaderboard's filters: blind judgements only unless asked."""
    return _filters(blind, rater, since, until)


def export_filters(
    rater: RaterQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    blind: Annotated[
        Blind, Query(description="`any` judgement (default) or `only` blind ones")
    ] = Blind.ANY,
) -> Filters:
    """The training exports' filters: any judgement unless asked (a preference is training
    data whether or not the rater knew the models)."""
    return _filters(blind, rater, since, until)


def _filters(
    blind: Blind, rater: str | None, since: datetime | None, until: datetime | None
) -> Filters:
    """Filters with the window in UTC (checked here, before any answer starts)."""
    return Filters(
        blind=blind,
        rater=rater,
        since=_utc(since) if since else None,
        until=_utc(until) if until else None,
    )


LeaderboardFilters = Annotated[Filters, Depends(leaderboard_filters)]
ExportFilters = Annotated[Filters, Depends(export_filters)]

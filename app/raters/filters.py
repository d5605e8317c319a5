"""Which judgements the raters' figures count: the leaderboard's blind and window filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from app.leaderboard.filters import Blind, Filters, SinceQuery, UntilQuery, export_filters


def raters_filters(
    since: SinceQuery = None,
    until: UntilQuery = None,
    blind: Annotated[
        Blind, Query(description="`any` judgement (default) or `only` blind ones")
    ] = Blind.ANY,
) -> Filters:
    """The leaderboard's window and blind filters, any judgement by default: how raters work
    and agree does not depend on whether they saw the names. No rater filter: agreement
    compares everyone."""
    return export_filters(rater=None, since=since, until=until, blind=blind)


RatersFilters = Annotated[Filters, Depends(raters_filters)]

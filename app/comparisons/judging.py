"""Judgements as rankings: from a vote's winner, a ranking or "all bad" to ranks per slot, and
from ranks back to the pairwise outcomes the exports and (later) the leaderboard read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

from app.comparisons.models import Winner
from app.errors import InvalidInput

# Ranks per slot: 1 is best, equal ranks are ties; None for every slot when all were bad.
Ranks = dict[str, int | None]


def ranks_from_winner(winner: Winner, slots: Sequence[str]) -> Ranks:
    """A two-answer vote (a, b, tie or both_bad) as ranks."""
    if len(slots) != 2:
        raise InvalidInput(
            f"`winner` is for two answers; this turn has {len(slots)}: send `ranking` or `all_bad`"
        )
    first, second = slots
    if winner is Winner.BOTH_BAD:
        return dict.fromkeys(slots)
    if winner is Winner.TIE:
        return {first: 1, second: 1}
    if winner.value not in slots:
        raise InvalidInput(f"winner {winner.value!r} is not one of the answers {list(slots)}")
    return {first: 1 if winner.value == first else 2, second: 1 if winner.value == second else 2}


def ranks_from_ranking(ranking: Sequence[Sequence[str]], slots: Sequence[str]) -> Ranks:
    """Groups of slots, best first (a group holds answers judged equal), as ranks."""
    seen: list[str] = [slot for group in ranking for slot in group]
    if any(not group for group in ranking):
        raise InvalidInput("ranking: a group is empty")
    unknown = sorted(set(seen) - set(slots))
    if unknown:
        raise InvalidInput(f"ranking: {unknown} are not answers of this turn ({list(slots)})")
    if len(seen) != len(set(seen)):
        raise InvalidInput("ranking: an answer is listed twice")
    missing = sorted(set(slots) - set(seen))
    if missing:
        raise InvalidInput(f"ranking: every answer must be ranked; missing {missing}")
    ranks: Ranks = {}
    for place, group in enumerate(ranking, start=1):
        for slot in group:
            ranks[slot] = place
    return ranks


def ranking_of(ranks: Mapping[str, int | None]) -> list[list[str]] | None:
    """Ranks back to groups of slots, best first; None when all were bad."""
    if any(rank is None for rank in ranks.values()):
        return None
    places = sorted({rank for rank in ranks.values() if rank is not None})
    return [sorted(s for s, r in ranks.items() if r == place) for place in places]


def pair_outcome(rank_a: int | None, rank_b: int | None, all_bad: bool) -> Winner:
    """The outcome of one pair inside a judgement, from the pair's point of view."""
    if all_bad or rank_a is None or rank_b is None:
        return Winner.BOTH_BAD
    if rank_a == rank_b:
        return Winner.TIE
    return Winner.A if rank_a < rank_b else Winner.B


def pairs(slots: Sequence[str]) -> list[tuple[str, str]]:
    """Every pair of slots in slot order: n answers give n(n-1)/2 pairs."""
    return list(combinations(sorted(slots), 2))

"""One judgement as one nominal category (its verdict), the unit every agreement figure counts.

A two-answer judgement's verdict is its outcome: `a`, `b`, `tie` or `both_bad` (the slots, not
the screen positions, so a blind shuffle does not change it). An N-way judgement's verdict is
its top group, the answers ranked first: `c` alone, `a+c` for two answers sharing first place,
`tie` when every answer shares it, `both_bad` when all were bad. That keeps one verdict per item
(so "shared items" counts items, not pairs) and reduces to the two-answer outcome exactly; the
order below the top is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.comparisons.models import Winner

TIE, BOTH_BAD = Winner.TIE.value, Winner.BOTH_BAD.value


def verdict(ranks: Mapping[str, int | None], all_bad: bool) -> str:
    """The category of a judgement given its ranks per slot (1 best, None when all bad)."""
    if all_bad or not ranks or any(rank is None for rank in ranks.values()):
        return BOTH_BAD
    best = min(rank for rank in ranks.values() if rank is not None)
    top = sorted(slot for slot, rank in ranks.items() if rank == best)
    return TIE if len(top) == len(ranks) else "+".join(top)


def has_tie(ranks: Mapping[str, int | None], all_bad: bool) -> bool:
    """True when two answers share a rank (for two answers: a tie); all bad is not a tie."""
    if all_bad or any(rank is None for rank in ranks.values()):
        return False
    return len(set(ranks.values())) < len(ranks)

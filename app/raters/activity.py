"""Per-rater figures: judgements, median time per judgement, ties, both-bad, majority agreement.

Time per judgement is the gap between a rater's consecutive judgements (by when each was first
made), counted only when it is at most GAP_LIMIT: a longer gap is a break, left out rather than
capped (a capped break would still pull the median up). The alternative, from the moment the
judged answers finished to the judgement, measures nothing useful when a rater opens an item
others prompted hours earlier (the case agreement needs) and is undefined for answers that never
finished; the gap works for both. The first judgement of each sitting has no time.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.raters.queries import Item, Judged

GAP_LIMIT = 600.0
MIN_OTHERS = 2


@dataclass(frozen=True)
class RaterFigures:
    """One rater's row."""

    rater: str
    judgements: int
    median_seconds: float | None
    timed_judgements: int
    tie_share: float
    both_bad_share: float
    majority_agreement: float | None
    majority_items: int


def verdicts_by_item(judged: Sequence[Judged]) -> dict[Item, dict[str, str]]:
    """Each item's verdicts by rater."""
    items: dict[Item, dict[str, str]] = defaultdict(dict)
    for j in judged:
        items[j.item][j.rater] = j.verdict
    return dict(items)


def majority(verdicts: Sequence[str]) -> str | None:
    """The most frequent verdict, or None when another is as frequent (no majority)."""
    top = Counter(verdicts).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def _majority_agreement(
    rater: str, items: Mapping[Item, Mapping[str, str]]
) -> tuple[float | None, int]:
    """Share of the rater's verdicts equal to the majority of the OTHER raters, on items with at
    least MIN_OTHERS other raters and a majority among them; and how many such items."""
    agreed = counted = 0
    for verdicts in items.values():
        if rater not in verdicts or len(verdicts) - 1 < MIN_OTHERS:
            continue
        common = majority([v for r, v in verdicts.items() if r != rater])
        if common is None:
            continue
        counted += 1
        agreed += verdicts[rater] == common
    return (round(agreed / counted, 4) if counted else None), counted


def rater_figures(judged: Sequence[Judged]) -> list[RaterFigures]:
    """One row per rater, most judgements first."""
    by_rater: dict[str, list[Judged]] = defaultdict(list)
    for j in judged:
        by_rater[j.rater].append(j)
    items = verdicts_by_item(judged)
    rows = []
    for rater, own in by_rater.items():
        gaps = [j.gap for j in own if j.gap is not None and 0 <= j.gap <= GAP_LIMIT]
        agreement, agreement_items = _majority_agreement(rater, items)
        rows.append(
            RaterFigures(
                rater=rater,
                judgements=len(own),
                median_seconds=round(statistics.median(gaps), 1) if gaps else None,
                timed_judgements=len(gaps),
                tie_share=round(sum(j.tie for j in own) / len(own), 4),
                both_bad_share=round(sum(j.all_bad for j in own) / len(own), 4),
                majority_agreement=agreement,
                majority_items=agreement_items,
            )
        )
    return sorted(rows, key=lambda r: (-r.judgements, r.rater))

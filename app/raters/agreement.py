"""Inter-rater agreement on items judged by more than one rater, with established libraries.

Categories are the verdicts (app/raters/verdicts.py), nominal. Cohen's kappa (scikit-learn) for
each pair of raters on the items both judged; Fleiss' kappa (statsmodels) on the largest set of
items judged by the same number of raters (it needs a fixed number per item); Krippendorff's
alpha (krippendorff, nominal) on every item with two or more judgements (it allows any number).
A figure that is undefined (fewer than MIN_ITEMS items, or a single category so that chance
agreement is already perfect) is None with a note, never NaN.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import combinations

import krippendorff
import numpy as np

from app.raters.queries import Item

MIN_ITEMS = 2
SINGLE_CATEGORY = "not enough data: every verdict is the same category, so kappa is undefined"
Items = Mapping[Item, Mapping[str, str]]


@dataclass(frozen=True)
class Figure:
    """An agreement figure (None when undefined), the items behind it and why if undefined."""

    value: float | None
    items: int
    note: str | None = None
    raters_per_item: int | None = None


@dataclass(frozen=True)
class PairFigure:
    """Cohen's kappa for two raters."""

    rater_a: str
    rater_b: str
    kappa: Figure


def _defined(compute: Callable[[], float], items: int, raters: int | None = None) -> Figure:
    """Run a library computation; a NaN or infinite answer becomes "not enough data" (the
    callers rule out the known undefined cases first, so the libraries do not warn)."""
    value = float(compute())
    if not math.isfinite(value):
        return Figure(None, items, SINGLE_CATEGORY, raters)
    return Figure(round(value, 4), items, None, raters)


def _too_few(items: int, raters: int | None = None) -> Figure | None:
    """ "Not enough data" when fewer than MIN_ITEMS items are shared, else None."""
    if items < MIN_ITEMS:
        return Figure(None, items, f"not enough data: fewer than {MIN_ITEMS} shared items", raters)
    return None


def cohen_pairs(items: Items) -> list[PairFigure]:
    """Cohen's kappa for every pair of raters who judged at least one item in common."""
    from sklearn.metrics import cohen_kappa_score  # slow to import: only when asked

    shared: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for verdicts in items.values():
        for first, second in combinations(sorted(verdicts), 2):
            labels = shared[first, second]
            labels[0].append(verdicts[first])
            labels[1].append(verdicts[second])
    result = []
    for (first, second), (one, other) in sorted(shared.items()):
        figure = _too_few(len(one))
        if figure is None and len(set(one) | set(other)) < 2:
            figure = Figure(None, len(one), SINGLE_CATEGORY)
        if figure is None:
            figure = _defined(partial(cohen_kappa_score, one, other), len(one))
        result.append(PairFigure(first, second, figure))
    return result


def _categories(items: Items) -> dict[str, int]:
    """Every verdict given, numbered in sorted order."""
    names = sorted({v for verdicts in items.values() for v in verdicts.values()})
    return {name: code for code, name in enumerate(names)}


def fleiss(items: Items) -> Figure:
    """Fleiss' kappa on the largest group of items sharing one number of raters (the larger
    number when two groups are as large)."""
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa  # slow import

    sizes = Counter(len(verdicts) for verdicts in items.values() if len(verdicts) >= 2)
    if not sizes:
        return Figure(None, 0, "not enough data: no item was judged by more than one rater")
    raters, count = max(sizes.items(), key=lambda size: (size[1], size[0]))
    figure = _too_few(count, raters)
    if figure is not None:
        return figure
    codes = _categories(items)
    chosen = [list(verdicts.values()) for verdicts in items.values() if len(verdicts) == raters]
    if len({v for row in chosen for v in row}) < 2:
        return Figure(None, count, SINGLE_CATEGORY, raters)
    table, _ = aggregate_raters(np.array([[codes[v] for v in row] for row in chosen]), len(codes))
    return _defined(lambda: fleiss_kappa(table, method="fleiss"), count, raters)


def krippendorff_alpha(items: Items) -> Figure:
    """Krippendorff's alpha (nominal) over every item with at least two judgements."""
    codes = _categories(items)
    rated = [verdicts for verdicts in items.values() if len(verdicts) >= 2]
    figure = _too_few(len(rated))
    if figure is not None:
        return figure
    # Units by categories: how many raters gave each verdict (no rater-by-item matrix needed).
    counts = np.zeros((len(rated), len(codes)), dtype=np.int64)
    for row, verdicts in enumerate(rated):
        for v in verdicts.values():
            counts[row, codes[v]] += 1
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        return Figure(None, len(rated), SINGLE_CATEGORY.replace("kappa", "alpha"))
    return _defined(
        lambda: krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"), len(rated)
    )

"""Bradley-Terry ratings by maximum likelihood (SciPy), with a seeded bootstrap over pairs.

The fit follows Chatbot Arena: P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)), a tie is half a
win for each side, and a tiny L2 penalty makes the ratings identifiable. Ratings are anchored
so their mean is 1000. Intervals are the 2.5th and 97.5th percentiles of the ratings refitted
on pairs resampled with replacement; the rank counts the models whose whole interval lies
above this model's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from app.comparisons.models import Winner
from app.leaderboard.pairs import BothBad, PairCount

SCALE, BASE, ANCHOR = 400.0, 10.0, 1000.0
L2 = 1e-4
ROUNDS, SEED = 200, 0
# Half a win for each side: where the outcome puts the first model of a pair.
_SHARE = {Winner.A: 1.0, Winner.B: 0.0, Winner.TIE: 0.5, Winner.BOTH_BAD: 0.5}

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class Rated:
    """One model's row: its rating, 95% interval, rank and number of pairs."""

    name: str
    rating: float
    ci_low: float
    ci_high: float
    rank: int
    pairs: int


@dataclass(frozen=True)
class Board:
    """Models best first, the win rates between them (row against column) and the pair count."""

    models: list[Rated]
    win_rates: list[list[float | None]]
    pair_counts: list[list[int]]
    pairs: int


@dataclass(frozen=True)
class _Outcomes:
    """The pairs as categories: first and second model index, share of a win, how many."""

    names: list[str]
    first: NDArray[np.intp]
    second: NDArray[np.intp]
    share: Matrix
    count: Matrix


def _outcomes(counts: Sequence[PairCount], both_bad: BothBad) -> _Outcomes:
    kept = [c for c in counts if not (both_bad is BothBad.EXCLUDE and c.outcome is Winner.BOTH_BAD)]
    names = sorted({c.model_a for c in kept} | {c.model_b for c in kept})
    index = {name: i for i, name in enumerate(names)}
    return _Outcomes(
        names=names,
        first=np.array([index[c.model_a] for c in kept], dtype=np.intp),
        second=np.array([index[c.model_b] for c in kept], dtype=np.intp),
        share=np.array([_SHARE[c.outcome] for c in kept], dtype=np.float64),
        count=np.array([c.count for c in kept], dtype=np.float64),
    )


def _wins(data: _Outcomes, count: Matrix) -> Matrix:
    """wins[i, j]: how much i won against j (ties half), summed over the categories."""
    size = len(data.names)
    wins = np.zeros((size, size))
    np.add.at(wins, (data.first, data.second), count * data.share)
    np.add.at(wins, (data.second, data.first), count * (1.0 - data.share))
    return wins


def _loss(strength: Matrix, wins: Matrix) -> tuple[float, Matrix]:
    """Negative log-likelihood (natural units) plus the L2 penalty, and its gradient."""
    diff = strength[:, None] - strength[None, :]
    # log(sigmoid(d)) = -log(1 + e^-d), computed stably.
    loss = float(np.sum(wins * np.logaddexp(0.0, -diff))) + 0.5 * L2 * float(strength @ strength)
    lost_share = wins * (1.0 - 1.0 / (1.0 + np.exp(-diff)))
    gradient = -(lost_share.sum(axis=1) - lost_share.sum(axis=0)) + L2 * strength
    return loss, gradient


def _strengths(wins: Matrix, start: Matrix | None = None) -> Matrix:
    """The maximum-likelihood strengths (natural log-odds units) for a wins matrix."""
    start = np.zeros(wins.shape[0]) if start is None else start
    result = minimize(_loss, start, args=(wins,), jac=True, method="L-BFGS-B")
    return np.asarray(result.x, dtype=np.float64)


def _scaled(strength: Matrix) -> Matrix:
    """Strengths on the Elo-like scale, anchored so the mean is 1000."""
    scaled: Matrix = ANCHOR + SCALE / math.log(BASE) * (strength - strength.mean())
    return scaled


def fit(
    counts: Sequence[PairCount],
    both_bad: BothBad = BothBad.TIE,
    rounds: int = ROUNDS,
    seed: int = SEED,
) -> Board:
    """Ratings, intervals, ranks and win rates from counted pairs (the same input and seed
    always give the same numbers)."""
    # Tiny problems: a BLAS thread pool only adds overhead (tenfold on a shared machine).
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(_outcomes(counts, both_bad), rounds, seed)


def _fit(data: _Outcomes, rounds: int, seed: int) -> Board:
    """fit() on the pairs as categories."""
    total = int(data.count.sum())
    if total == 0:
        return Board(models=[], win_rates=[], pair_counts=[], pairs=0)
    wins = _wins(data, data.count)
    strength = _strengths(wins)
    rating = _scaled(strength)
    # Resampling every pair with replacement is a multinomial draw over the categories.
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, data.count / total, size=rounds).astype(np.float64)
    # Each round starts from the full fit: the same optimum, reached in a few steps.
    samples = np.array([_scaled(_strengths(_wins(data, d), strength)) for d in draws])
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    played = wins + wins.T
    order = sorted(range(len(data.names)), key=lambda i: (-rating[i], data.names[i]))
    models = [
        Rated(
            name=data.names[i],
            rating=round(float(rating[i]), 2),
            ci_low=round(float(low[i]), 2),
            ci_high=round(float(high[i]), 2),
            rank=1 + int(np.sum(low > high[i])),
            pairs=round(played[i].sum()),
        )
        for i in order
    ]
    win_rates = [
        [None if played[i, j] == 0 else round(float(wins[i, j] / played[i, j]), 4) for j in order]
        for i in order
    ]
    pair_counts = [[round(played[i, j]) for j in order] for i in order]
    return Board(models=models, win_rates=win_rates, pair_counts=pair_counts, pairs=total)

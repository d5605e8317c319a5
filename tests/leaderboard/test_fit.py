"""The fit on synthetic votes drawn from known strengths, ties, and edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.comparisons.models import Winner
from app.leaderboard.fit import fit
from app.leaderboard.pairs import BothBad, PairCount

# True ratings on the Elo-like scale (mean 1000), far enough apart to order with 3000 pairs.
TRUE = {"m1": 1150.0, "m2": 1060.0, "m3": 1000.0, "m4": 940.0, "m5": 850.0}


def synthetic(seed: int, pairs: int = 3000, tie_share: float = 0.1) -> list[PairCount]:
    """Pairs between random models, outcomes drawn from the BT model (with some ties)."""
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    counts: dict[tuple[str, str, Winner], int] = {}
    for _ in range(pairs):
        i, j = rng.choice(len(names), size=2, replace=False)
        a, b = names[i], names[j]
        p_a = 1 / (1 + 10 ** ((TRUE[b] - TRUE[a]) / 400))
        # Ties at a fixed rate, wins set so a's expected share (ties half) is still p_a.
        if rng.random() < tie_share:
            outcome = Winner.TIE
        else:
            p_win = (p_a - tie_share / 2) / (1 - tie_share)
            outcome = Winner.A if rng.random() < p_win else Winner.B
        counts[a, b, outcome] = counts.get((a, b, outcome), 0) + 1
    return [PairCount(a, b, o, n) for (a, b, o), n in counts.items()]


def test_fitted_order_and_intervals_match_the_true_strengths_over_seeds() -> None:
    seeds = range(12)
    ordered = covered = total = 0
    for seed in seeds:
        board = fit(synthetic(seed), rounds=200, seed=seed)
        ordered += [m.name for m in board.models] == list(TRUE)
        for m in board.models:
            total += 1
            covered += m.ci_low <= TRUE[m.name] <= m.ci_high
        assert abs(sum(m.rating for m in board.models) / len(board.models) - 1000) < 0.01
    assert ordered >= len(seeds) - 1
    # Nominal 95%: the large majority of intervals hold the true rating.
    assert covered / total >= 0.85, (covered, total)


def test_same_votes_and_seed_give_the_same_numbers() -> None:
    counts = synthetic(3, pairs=500)
    assert fit(counts, seed=5) == fit(counts, seed=5)
    assert fit(counts, seed=5).models != fit(counts, seed=6).models


def test_a_tie_is_half_a_win_for_each_side() -> None:
    board = fit([PairCount("x", "y", Winner.TIE, 50)], rounds=20)
    assert [m.rating for m in board.models] == pytest.approx([1000, 1000], abs=0.01)
    assert board.win_rates == [[None, 0.5], [0.5, None]]
    # Three wins and a tie: 3.5 of 4; the odds 3.5 : 0.5 give 400*log10(7) points apart.
    board = fit([PairCount("x", "y", Winner.A, 30), PairCount("x", "y", Winner.TIE, 10)], rounds=20)
    gap = board.models[0].rating - board.models[1].rating
    assert gap == pytest.approx(400 * math.log10(7), rel=1e-3)
    assert board.win_rates[0][1] == 0.875


def test_both_bad_counts_as_a_tie_or_is_excluded() -> None:
    counts = [PairCount("x", "y", Winner.A, 30), PairCount("x", "y", Winner.BOTH_BAD, 30)]
    as_tie = fit(counts, both_bad=BothBad.TIE, rounds=20)
    excluded = fit([*counts, PairCount("x", "y", Winner.B, 10)], both_bad=BothBad.EXCLUDE)
    assert as_tie.pairs == 60 and as_tie.win_rates[0][1] == 0.75
    assert excluded.pairs == 40 and excluded.win_rates[0][1] == 0.75
    assert [m.pairs for m in excluded.models] == [40, 40]


def test_rank_separates_only_models_whose_intervals_do_not_overlap() -> None:
    counts = [
        PairCount("strong", "weak", Winner.A, 900),
        PairCount("strong", "weak", Winner.B, 100),
        PairCount("weak", "twin", Winner.A, 100),
        PairCount("weak", "twin", Winner.B, 100),
    ]
    board = fit(counts, seed=1)
    ranks = {m.name: m.rank for m in board.models}
    assert ranks == {"strong": 1, "weak": 2, "twin": 2}
    for m in board.models:
        assert m.ci_low <= m.rating <= m.ci_high


def test_no_pairs_is_an_empty_board() -> None:
    board = fit([])
    assert (board.models, board.win_rates, board.pairs) == ([], [], 0)
    assert fit([PairCount("x", "y", Winner.BOTH_BAD, 3)], both_bad=BothBad.EXCLUDE).pairs == 0

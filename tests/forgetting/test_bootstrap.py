"""The paired bootstrap: reproducible with a seed, about 95% coverage, paired differences."""

from __future__ import annotations

import numpy as np
import pytest

from app.forgetting.bootstrap import Bootstrap


def test_same_seed_same_intervals_other_seed_other_intervals() -> None:
    rng = np.random.default_rng(7)
    correct = rng.random((2, 80)) < 0.6
    first, again = Bootstrap.of(correct, seed=3), Bootstrap.of(correct, seed=3)
    assert first.accuracy(0) == again.accuracy(0)
    assert first.difference(1, 0) == again.difference(1, 0)
    # Another seed draws other resamples (the percentiles may still land on the same values).
    assert not np.array_equal(Bootstrap.of(correct, seed=4).samples, first.samples)


def test_interval_holds_the_estimate_and_chunking_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    correct = np.random.default_rng(1).random((3, 50)) < 0.5
    whole = Bootstrap.of(correct, seed=0, resamples=500)
    monkeypatch.setattr("app.forgetting.bootstrap.CHUNK_CELLS", 7 * 50)
    chunked = Bootstrap.of(correct, seed=0, resamples=500)
    for model in range(3):
        interval = whole.accuracy(model)
        assert interval.low <= interval.estimate <= interval.high
        assert chunked.accuracy(model) == interval


def test_coverage_of_the_accuracy_interval_is_near_95_percent() -> None:
    rng = np.random.default_rng(2026)
    truth, items, trials = 0.7, 200, 300
    covered = 0
    for trial in range(trials):
        correct = rng.random((1, items)) < truth
        interval = Bootstrap.of(correct, seed=trial, resamples=1000).accuracy(0)
        covered += interval.low <= truth <= interval.high
    # Binomial noise on 300 trials at p=0.95 is about +-1.3 points; percentile intervals of a
    # proportion run a little narrow.
    assert 0.89 <= covered / trials <= 0.99


def test_paired_difference_is_narrower_than_unpaired_when_models_agree() -> None:
    rng = np.random.default_rng(5)
    original = rng.random(200) < 0.7
    tuned = original.copy()
    tuned[np.flatnonzero(original)[:10]] = False  # forgets 10 items, agrees on the rest
    boot = Bootstrap.of(np.stack([original, tuned]), seed=0)
    diff = boot.difference(1, 0)
    assert diff.estimate == pytest.approx(-10 / 200)
    assert diff.high < 0  # significantly worse: paired, the 10 losses stand out
    # The models' own intervals overlap: unpaired, the same data would show nothing.
    assert boot.accuracy(1).high > boot.accuracy(0).low


def test_identical_models_differ_by_exactly_zero() -> None:
    correct = np.random.default_rng(0).random(40) < 0.5
    diff = Bootstrap.of(np.stack([correct, correct]), seed=0).difference(1, 0)
    assert (diff.estimate, diff.low, diff.high) == (0.0, 0.0, 0.0)


def test_no_items_is_refused() -> None:
    with pytest.raises(ValueError):
        Bootstrap.of(np.zeros((2, 0), dtype=bool), seed=0)

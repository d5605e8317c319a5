"""Paired percentile bootstrap over items: accuracies and a difference of accuracies.

Items are resampled with replacement, the same resampled items for every model (the answers
to one item are paired), so the interval of a difference reflects that the models saw the
same questions. Seeded: the same scores and seed give the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RESAMPLES = 10_000
LEVEL = 0.95
# Index matrices are built this many cells at a time, so a large set stays small in memory.
CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float


def resampled_means(
    correct: npt.NDArray[np.bool_], seed: int, resamples: int = RESAMPLES
) -> npt.NDArray[np.float64]:
    """Each model's accuracy on each bootstrap resample of the items: shape (models, resamples).

    `correct` is (models, items); every resample draws one set of item indices for all models.
    """
    models, items = correct.shape
    rng = np.random.default_rng(seed)
    values = correct.astype(np.float64)
    out = np.empty((models, resamples))
    step = max(1, CHUNK_CELLS // max(items, 1))
    for start in range(0, resamples, step):
        count = min(step, resamples - start)
        picks = rng.integers(0, items, size=(count, items))
        for model in range(models):
            # One model at a time: no (models, resamples, items) array is ever built.
            out[model, start : start + count] = values[model][picks].mean(axis=1)
    return out


def interval(estimate: float, samples: npt.NDArray[np.float64], level: float = LEVEL) -> Interval:
    """The percentile interval of the samples around an estimate."""
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


@dataclass(frozen=True)
class Bootstrap:
    """Accuracies of every model and differences between any two, from one set of resamples."""

    correct: npt.NDArray[np.bool_]
    samples: npt.NDArray[np.float64]

    @classmethod
    def of(cls, correct: npt.NDArray[np.bool_], seed: int, resamples: int = RESAMPLES) -> Bootstrap:
        """Resample the items of a (models, items) matrix of right/wrong (items > 0)."""
        if correct.ndim != 2 or correct.shape[1] == 0:
            raise ValueError("need a (models, items) matrix with at least one item")
        return cls(correct, resampled_means(correct, seed, resamples))

    def accuracy(self, model: int) -> Interval:
        """A model's accuracy with its interval."""
        return interval(float(self.correct[model].mean()), self.samples[model])

    def difference(self, tuned: int, original: int) -> Interval:
        """Accuracy of `tuned` minus that of `original`, with its paired interval."""
        estimate = float(self.correct[tuned].mean() - self.correct[original].mean())
        return interval(estimate, self.samples[tuned] - self.samples[original])

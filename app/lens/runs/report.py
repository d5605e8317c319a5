"""The figures of a run's token-shift report, per chat model: how shifted its answers are,
which tokens shift most, and where in an answer the shifts fall (URIAL, Lin et al. 2023).

Pure arithmetic over stored analyses (their `tokens`, each with its `shift` class), fed one
answer at a time so a large run is read in batches. Bins and deciles use integer arithmetic,
so a ratio on a bin's edge always lands in the bin that starts there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.lens.shift import Shift

BINS = 10  # the histogram of shifted ratios: 0-10%, ..., 90-100%
DECILES = 10
FIRST_POSITIONS = 10  # share shifted at each of an answer's first N token positions
TOP_TOKENS = 30


def ratio_bin(shifted: int, total: int) -> int:
    """The histogram bin (0..BINS-1) of an answer with `shifted` of `total` tokens shifted;
    100% goes in the last bin."""
    return min(BINS * shifted // total, BINS - 1)


def decile(position: int, total: int) -> int:
    """Which tenth (0..9) of an answer of `total` tokens a position (from 0) falls in."""
    return DECILES * position // total


def share(part: int, whole: int) -> float | None:
    """part/whole, or None when there is nothing to divide."""
    return part / whole if whole else None


@dataclass
class Tally:
    """Tokens seen and shifted in one cell (a decile, a position)."""

    tokens: int = 0
    shifted: int = 0

    @property
    def share(self) -> float | None:
        """The share of its tokens shifted."""
        return share(self.shifted, self.tokens)


@dataclass(frozen=True)
class TokenRow:
    """A token that shifted, with how often, out of how often it occurs."""

    token: str
    shifted: int
    occurrences: int

    @property
    def share(self) -> float:
        """The share of its occurrences that are shifted."""
        return self.shifted / self.occurrences


@dataclass
class ModelReport:
    """One chat model's answers scored under one base model."""

    model: str
    base: str
    answers: int = 0
    tokens: int = 0
    shifted: int = 0
    marginal: int = 0
    ratios: list[float] = field(default_factory=list)
    histogram: list[int] = field(default_factory=lambda: [0] * BINS)
    deciles: list[Tally] = field(default_factory=lambda: [Tally() for _ in range(DECILES)])
    first: list[Tally] = field(default_factory=lambda: [Tally() for _ in range(FIRST_POSITIONS)])
    later: Tally = field(default_factory=Tally)
    seen: Counter[str] = field(default_factory=Counter)
    shifted_by_token: Counter[str] = field(default_factory=Counter)

    def add(self, classes: list[str], texts: list[str]) -> None:
        """One answer: each token's class (unshifted, marginal, shifted) and text."""
        total = len(classes)
        if total == 0:
            return
        flags = [c == Shift.SHIFTED for c in classes]
        shifted = sum(flags)
        self.answers += 1
        self.tokens += total
        self.shifted += shifted
        self.marginal += sum(c == Shift.MARGINAL for c in classes)
        self.ratios.append(shifted / total)
        self.histogram[ratio_bin(shifted, total)] += 1
        for position, (flag, text) in enumerate(zip(flags, texts, strict=True)):
            cell = self.deciles[decile(position, total)]
            cell.tokens += 1
            cell.shifted += flag
            slot = self.first[position] if position < FIRST_POSITIONS else self.later
            slot.tokens += 1
            slot.shifted += flag
            self.seen[text] += 1
            if flag:
                self.shifted_by_token[text] += 1

    @property
    def shifted_share(self) -> float | None:
        """Shifted tokens over all tokens (each token counts once)."""
        return share(self.shifted, self.tokens)

    @property
    def marginal_share(self) -> float | None:
        """Marginal tokens over all tokens."""
        return share(self.marginal, self.tokens)

    @property
    def mean_ratio(self) -> float | None:
        """The mean of the answers' shifted ratios (each answer counts once)."""
        return sum(self.ratios) / len(self.ratios) if self.ratios else None

    @property
    def median_ratio(self) -> float | None:
        """The median of the answers' shifted ratios."""
        ordered = sorted(self.ratios)
        n = len(ordered)
        if not n:
            return None
        middle = n // 2
        return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def top_tokens(self, limit: int = TOP_TOKENS) -> list[TokenRow]:
        """The tokens shifted most often: by count, then by share shifted, then by text."""
        rows = [TokenRow(t, n, self.seen[t]) for t, n in self.shifted_by_token.items()]
        rows.sort(key=lambda r: (-r.shifted, -r.share, r.token))
        return rows[:limit]


def add_analysis(report: ModelReport, analysis: Mapping[str, Any]) -> None:
    """Add one stored analysis (ShiftAnalysis.to_json()) to a report."""
    tokens = analysis.get("tokens") or []
    report.add([str(t["shift"]) for t in tokens], [str(t["token"]) for t in tokens])


def bin_label(index: int) -> str:
    """A histogram bin's range in percent, e.g. '10-20%'."""
    step = 100 // BINS
    return f"{index * step}-{(index + 1) * step}%"

"""What the lens templates draw: tokens as cells with a class and a tooltip, ratios, prefixes."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from app.generation.logprobs import TokenInfo
from app.generation.records import Generation
from app.lens.models import TokenShiftAnalysis
from app.lens.shift import Shift, ShiftAnalysis, TokenShift

# Most shifted tokens an analysis lists by name (all of them stay marked in the answer).
SHIFTED_LIST_LIMIT = 200


@dataclass(frozen=True)
class Band:
    """A probability range drawn in one colour (the legend lists them)."""

    css: str
    low: float  # inclusive
    label: str


# Highest first: a token falls in the first band whose lower bound it reaches.
PROBABILITY_BANDS = (
    Band("p-sure", 0.9, "≥ 90%"),
    Band("p-likely", 0.5, "50-90%"),
    Band("p-maybe", 0.2, "20-50%"),
    Band("p-unlikely", 0.05, "5-20%"),
    Band("p-rare", 0.0, "< 5%"),
)
NO_LOGPROB = Band("p-none", 0.0, "no logprob")

SHIFT_LABELS = {
    Shift.UNSHIFTED: "unshifted (rank 1)",
    Shift.MARGINAL: "marginal (rank 2-3)",
    Shift.SHIFTED: "shifted (rank > 3)",
}


@dataclass(frozen=True)
class TokenCell:
    """One token as drawn: its exact text (so the answer copies as written), a class, a tooltip."""

    text: str
    css: str
    tip: str


def quoted(token: str) -> str:
    """A token written so that its whitespace shows: JSON string syntax, quotes included."""
    return json.dumps(token, ensure_ascii=False)


def percent(probability: float) -> str:
    """A probability as a short percentage."""
    value = probability * 100
    if value >= 99.95 or value == 0:
        return f"{value:.0f}%"
    return f"{value:.1f}%" if value >= 0.1 else "<0.1%"


def probability_band(logprob: float | None) -> Band:
    """The colour band of a token's own probability."""
    if logprob is None:
        return NO_LOGPROB
    probability = math.exp(logprob)
    return next(band for band in PROBABILITY_BANDS if probability >= band.low)


def probability_cells(tokens: Sequence[TokenInfo]) -> list[TokenCell]:
    """A generation's tokens coloured by the model's own probability, alternatives in the tip."""
    cells = []
    for token in tokens:
        lines = [
            f"{quoted(token.token)}  p = {percent(math.exp(token.logprob))}"
            f"  (logprob {token.logprob:.3f})"
            if token.logprob is not None
            else f"{quoted(token.token)}  (no logprob)"
        ]
        if token.top:
            lines.append("top alternatives:")
            lines += [
                f"{rank}. {quoted(text)}  {percent(math.exp(logprob))}"
                for rank, (text, logprob) in enumerate(token.top, start=1)
            ]
        cells.append(TokenCell(token.token, probability_band(token.logprob).css, "\n".join(lines)))
    return cells


def _shift_tip(token: TokenShift, base_model: str) -> str:
    lines = [
        f"{quoted(token.token)}: {SHIFT_LABELS[token.shift]}",
        f"rank {token.rank} under {base_model}, p = {percent(math.exp(token.logprob))}",
    ]
    if token.rank != 1:
        lines.append(
            f"{base_model} would say {quoted(token.top_token)}"
            f" (p = {percent(math.exp(token.top_logprob))})"
        )
    if token.chat_logprob is not None:
        lines.append(f"chat model's own p = {percent(math.exp(token.chat_logprob))}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ShiftView:
    """A stored token-shift analysis as drawn: marked tokens, ratios, shifted tokens, costs."""

    stored: TokenShiftAnalysis
    analysis: ShiftAnalysis

    @classmethod
    def of(cls, stored: TokenShiftAnalysis) -> ShiftView:
        """Read the stored JSON (written by this app, so trusted to parse)."""
        return cls(stored, ShiftAnalysis.from_json(stored.analysis))

    @property
    def cells(self) -> list[TokenCell]:
        """Every answer token, marked by its class."""
        base = self.stored.base_model
        return [
            TokenCell(t.token, f"shift-{t.shift.value}", _shift_tip(t, base))
            for t in self.analysis.tokens
        ]

    @property
    def counts(self) -> dict[str, int]:
        """Tokens per class, by class name."""
        return {shift.value: count for shift, count in self.analysis.counts.items()}

    @property
    def shifted(self) -> list[TokenShift]:
        """The shifted tokens to list (the first SHIFTED_LIST_LIMIT)."""
        return self.analysis.shifted_tokens()[:SHIFTED_LIST_LIMIT]

    def share(self, shift: str) -> str:
        """A class's share of the answer's tokens, as a percentage."""
        return percent(self.analysis.ratio(Shift(shift)))


def prefix_text(source: Generation, k: int) -> str | None:
    """The text of the first k tokens of an answer, when its tokens are stored."""
    if not source.tokens:
        return None
    return "".join(str(token.get("token", "")) for token in source.tokens[:k])

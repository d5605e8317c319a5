"""How the lens draws numbers: probability bands at their edges, percentages, quoted tokens."""

from __future__ import annotations

import math

import pytest

from app.generation.logprobs import TokenInfo
from app.lens.views import NO_LOGPROB, percent, probability_band, probability_cells, quoted


@pytest.mark.parametrize(
    ("probability", "css"),
    [
        (1.0, "p-sure"),
        (0.9, "p-sure"),
        (0.899, "p-likely"),
        (0.5, "p-likely"),
        (0.2, "p-maybe"),
        (0.19, "p-unlikely"),
        (0.05, "p-unlikely"),
        (0.049, "p-rare"),
        (1e-9, "p-rare"),
    ],
)
def test_probability_bands_include_their_lower_edge(probability: float, css: str) -> None:
    # math.log then exp may land a hair under the edge: nudge up as a generated logprob would not.
    assert probability_band(math.log(probability) + 1e-12).css == css


def test_no_logprob_has_its_own_band() -> None:
    assert probability_band(None) is NO_LOGPROB


@pytest.mark.parametrize(
    ("probability", "shown"),
    [(1.0, "100%"), (0.9996, "100%"), (0.5, "50.0%"), (0.0123, "1.2%"), (0.0004, "<0.1%"),
     (0.0, "0%")],
)  # fmt: skip
def test_percentages(probability: float, shown: str) -> None:
    assert percent(probability) == shown


def test_quoted_tokens_show_their_whitespace() -> None:
    assert quoted(" Paris") == '" Paris"'
    assert quoted("\n") == '"\\n"'
    assert quoted("é") == '"é"'


def test_a_cell_keeps_the_exact_token_and_lists_alternatives_best_first() -> None:
    token = TokenInfo("\n", math.log(0.25), [(" the", math.log(0.5)), ("\n", math.log(0.25))], 7)
    [cell] = probability_cells([token])
    assert cell.text == "\n" and cell.css == "p-maybe"
    assert cell.tip.split("\n") == [
        '"\\n"  p = 25.0%  (logprob -1.386)',
        "top alternatives:",
        '1. " the"  50.0%',
        '2. "\\n"  25.0%',
    ]

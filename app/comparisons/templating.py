"""The comparisons' template helpers."""

from __future__ import annotations

from jinja2 import Environment

from app.comparisons.judging import pair_outcome
from app.comparisons.models import Judgement


def verdict(judgement: Judgement) -> str:
    """A two-answer judgement as a, b, tie or both_bad."""
    first, second = sorted(judgement.entries, key=lambda e: e.slot)[:2]
    return pair_outcome(first.rank, second.rank, judgement.all_bad).value


def register(env: Environment) -> None:
    """Make the comparison helpers available to the templates."""
    env.globals["verdict"] = verdict

"""The token lens's template helpers: legends, shift views and token quoting."""

from __future__ import annotations

from jinja2 import Environment

from app.lens import views
from app.lens.prefix import DEFAULT_PREFIX_TOKENS


def register(env: Environment) -> None:
    """Make the lens helpers available to every template that draws a column."""
    env.globals.update(
        probability_bands=views.PROBABILITY_BANDS,
        shift_labels=views.SHIFT_LABELS,
        shift_view=views.ShiftView.of,
        prefix_text=views.prefix_text,
        default_prefix_tokens=DEFAULT_PREFIX_TOKENS,
    )
    # A token in quotes with its whitespace visible (JSON string syntax); escaped like any text.
    env.filters["quoted"] = views.quoted

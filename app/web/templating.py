"""Jinja2 templates (autoescaped: model output and user input are untrusted text)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from app.lens import views as lens_views
from app.lens.prefix import DEFAULT_PREFIX_TOKENS

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

templates = Jinja2Templates(directory=TEMPLATES_DIR)
# Never let a template opt out of escaping by accident: autoescape everything, not just .html.
templates.env.autoescape = True


def _ms(value: float | None) -> str:
    """Milliseconds as a short human string."""
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


templates.env.filters["ms"] = _ms
# The token lens's legends and helpers, for every template that draws a column.
templates.env.globals.update(
    probability_bands=lens_views.PROBABILITY_BANDS,
    shift_labels=lens_views.SHIFT_LABELS,
    shift_view=lens_views.ShiftView.of,
    prefix_text=lens_views.prefix_text,
    default_prefix_tokens=DEFAULT_PREFIX_TOKENS,
)
# A token in quotes with its whitespace visible (JSON string syntax); escaped like any text.
templates.env.filters["quoted"] = lens_views.quoted

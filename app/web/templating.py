"""Jinja2 templates (autoescaped: model output and user input are untrusted text).

Domains add their own template helpers (see each domain's `templating.register`), called once
by create_app, so this module imports no domain."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

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

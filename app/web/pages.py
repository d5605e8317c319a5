"""What every page router shares: CSRF checks, full-page rendering, the local rater name."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from app.web.deps import State
from app.web.templating import templates

# The rater this browser last judged as (local mode has no accounts, only a name): a blind
# comparison shows its names to a rater who has judged it.
RATER_COOKIE = "playground_rater"


async def verify_csrf(request: Request, state: State) -> None:
    """Every state-changing page request must carry this browser's CSRF token."""
    await state.csrf.verify(request)


csrf = [Depends(verify_csrf)]


def render(request: Request, state: State, name: str, context: dict[str, Any]) -> HTMLResponse:
    """A full page, carrying the CSRF token that its htmx requests send back."""
    cookie, is_new = state.csrf.browser_cookie(request)
    context = {
        **context,
        "csrf_token": state.csrf.token_for(cookie),
        "models": state.models.models,
        "notice": state.notice,
        "model_problems": state.model_problems(),
    }
    response = templates.TemplateResponse(request, name, context)
    if is_new:
        state.csrf.set_cookie(response, cookie)
    return response


def rater_of(request: Request) -> str | None:
    """The rater name this browser judged as last; in team mode the signed-in account's
    (the access guard sets `request.state.account`), never a cookie anyone could write."""
    if hasattr(request.state, "account"):
        account = request.state.account
        return str(account.username) if account is not None else None
    value = request.cookies.get(RATER_COOKIE)
    return unquote(value)[:64] if value else None


def remember_rater(response: Response, rater: str) -> None:
    """Remember the rater in the browser, so its blind comparisons stay revealed on reload."""
    response.set_cookie(
        RATER_COOKIE, quote(rater), max_age=365 * 24 * 3600, httponly=True, samesite="lax"
    )

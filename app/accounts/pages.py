"""Hypermedia routes: sign-in and sign-out, invite links, one's account and API tokens."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from app.accounts.deps import AccountsDep, Me, team_only
from app.accounts.service import TooManyAttempts
from app.errors import InvalidInput, NotFound
from app.identity.sessions import SessionClaim
from app.text import check_text
from app.web.deps import State
from app.web.pages import csrf, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(team_only)])
INVITE_TOKEN = r"^[A-Za-z0-9_-]{16,100}$"  # noqa: S105  (a pattern, not a secret)
# Where a sign-in may return to: a path on this site (never //host or a scheme: open redirect).
_SAFE_NEXT = re.compile(r"^/(?![/\\])[^\s\\]{0,500}$")


def field(form: FormData, name: str, limit: int = 256) -> str:
    """A text field, bounded; NUL or lone surrogates are a 422."""
    value = form.get(name)
    text = value if isinstance(value, str) else ""
    if len(text) > limit:
        raise InvalidInput(f"{name}: at most {limit} characters")
    try:
        return check_text(text)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc}") from exc


def safe_next(target: str | None) -> str:
    """The page to return to after signing in: a local path, else the start page."""
    return target if target and _SAFE_NEXT.match(target) else "/"


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, state: State, next: str | None = Query(None, max_length=500)
) -> HTMLResponse:
    """The sign-in form."""
    return render(request, state, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login", dependencies=csrf)
async def login(request: Request, state: State, accounts: AccountsDep) -> Response:
    """Check the credentials; sign the browser in and go on, or show the form again (401)."""
    form = await request.form()
    target = safe_next(field(form, "next", 500))
    try:
        account = await accounts.sign_in(field(form, "username", 64), field(form, "password"))
    except TooManyAttempts as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, exc.message, headers) from exc
    if account is None:
        response = render(
            request, state, "login.html",
            {"next": target, "error": "Wrong username or password (or the account is disabled)."},
        )  # fmt: skip
        response.status_code = 401
        return response
    redirect = RedirectResponse(target, status_code=303)
    assert state.session_signer is not None  # team_only
    state.session_signer.set_cookie(redirect, SessionClaim(account.id, account.session_epoch))
    return redirect


@router.post("/logout", dependencies=csrf)
async def logout(state: State, accounts: AccountsDep, me: Me) -> Response:
    """Sign out here and everywhere else (every session of the account ends)."""
    await accounts.sign_out(me.id)
    redirect = RedirectResponse("/login", status_code=303)
    assert state.session_signer is not None
    state.session_signer.clear_cookie(redirect)
    return redirect


@router.get("/invite/{token}", response_class=HTMLResponse)
async def invite_page(
    token: str, request: Request, state: State, accounts: AccountsDep
) -> HTMLResponse:
    """Choose a username and password for an invited account."""
    _check_token(token)
    invite = await accounts.open_invite(token)
    return render(request, state, "invite.html", {"token": token, "role": invite.role})


@router.post("/invite/{token}", dependencies=csrf)
async def accept_invite(
    token: str, request: Request, state: State, accounts: AccountsDep
) -> Response:
    """Create the account (the link then stops working) and sign it in."""
    _check_token(token)
    form = await request.form()
    password = field(form, "password")
    if password != field(form, "password_again"):
        raise InvalidInput("the two passwords differ")
    account = await accounts.accept_invite(token, field(form, "username", 64), password)
    redirect = RedirectResponse("/", status_code=303)
    assert state.session_signer is not None
    state.session_signer.set_cookie(redirect, SessionClaim(account.id, account.session_epoch))
    return redirect


def _check_token(token: str) -> None:
    if not re.match(INVITE_TOKEN, token):
        raise NotFound("this invite link is not valid: it was used, expired or never made")


@router.get("/account", response_class=HTMLResponse)
async def account_page(
    request: Request, state: State, accounts: AccountsDep, me: Me
) -> HTMLResponse:
    """One's own account: role and API tokens."""
    context = {"me": me, "tokens": await accounts.tokens(me.id), "new_token": None}
    return render(request, state, "account.html", context)


@router.post("/account/tokens", response_class=HTMLResponse, dependencies=csrf)
async def create_token(
    request: Request, state: State, accounts: AccountsDep, me: Me
) -> HTMLResponse:
    """Make an API token and show it this once."""
    form = await request.form()
    name = field(form, "name", 64).strip() or "token"
    token = await accounts.create_token(me.id, name)
    context = {"me": me, "tokens": await accounts.tokens(me.id), "new_token": token}
    response = render(request, state, "account.html", context)
    response.headers["Cache-Control"] = "no-store"  # the token is on this page only
    return response


@router.post("/account/tokens/{token_id}/revoke", dependencies=csrf)
async def revoke_token(token_id: int, accounts: AccountsDep, me: Me) -> Response:
    """Revoke one of one's own tokens."""
    await accounts.revoke_tokens(me.id, token_id)
    return RedirectResponse("/account", status_code=303)

"""Hypermedia routes for admins: list accounts, invite by link, change roles, disable, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.accounts.deps import AccountsDep, Me, team_only
from app.accounts.pages import field
from app.errors import InvalidInput
from app.identity.models import Role
from app.web.deps import State
from app.web.pages import csrf, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(team_only)])


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        raise InvalidInput("role: choose rater or admin") from exc


async def _page(
    request: Request, state: State, accounts: AccountsDep, invite_url: str | None = None
) -> HTMLResponse:
    context = {
        "accounts": await accounts.all(),
        "invite_url": invite_url,
        "invite_hours": state.settings.invite_hours,
        "roles": list(Role),
    }
    return render(request, state, "admin_accounts.html", context)


@router.get("/admin/accounts", response_class=HTMLResponse)
async def accounts_page(request: Request, state: State, accounts: AccountsDep) -> HTMLResponse:
    """Every account with its role and state, and the invite form."""
    return await _page(request, state, accounts)


@router.post("/admin/invites", response_class=HTMLResponse, dependencies=csrf)
async def create_invite(
    request: Request, state: State, accounts: AccountsDep, me: Me
) -> HTMLResponse:
    """Make a single-use invite link (shown once) for a new rater or admin."""
    role = _role(field(await request.form(), "role", 10) or Role.RATER)
    token = await accounts.invite(me.id, role, state.settings.invite_hours)
    url = str(request.base_url).rstrip("/") + f"/invite/{token}"
    response = await _page(request, state, accounts, invite_url=url)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/admin/accounts/{account_id}/role", dependencies=csrf)
async def change_role(account_id: int, request: Request, accounts: AccountsDep, me: Me) -> Response:
    """Make an account a rater or an admin."""
    role = _role(field(await request.form(), "role", 10))
    await accounts.set_role(account_id, role, me.id)
    return RedirectResponse("/admin/accounts", status_code=303)


@router.post("/admin/accounts/{account_id}/disabled", dependencies=csrf)
async def set_disabled(
    account_id: int, request: Request, accounts: AccountsDep, me: Me
) -> Response:
    """Disable an account (its sessions and tokens stop at once) or enable it again."""
    disabled = field(await request.form(), "disabled", 5) == "true"
    await accounts.set_disabled(account_id, disabled, me.id)
    return RedirectResponse("/admin/accounts", status_code=303)


@router.post("/admin/accounts/{account_id}/tokens/revoke", dependencies=csrf)
async def revoke_tokens(account_id: int, accounts: AccountsDep) -> Response:
    """Revoke every API token of an account."""
    await accounts.get(account_id)
    await accounts.revoke_tokens(account_id)
    return RedirectResponse("/admin/accounts", status_code=303)

"""Dependencies of the account routes: the service, the signed-in identity, team mode only."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from app.accounts.service import AccountService
from app.identity.current import Identity, current_identity
from app.web.deps import SessionDep, State


def get_accounts(session: SessionDep) -> AccountService:
    """The account service on the request's session."""
    return AccountService(session)


async def team_only(state: State) -> None:
    """Accounts exist only in team mode: 404 in local mode."""
    if state.session_signer is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "accounts are off: this playground runs in local mode"
        )


def signed_in(request: Request) -> Identity:
    """The signed-in identity (the guard has already refused anonymous callers)."""
    identity = current_identity(request)
    if identity is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in first")
    return identity


AccountsDep = Annotated[AccountService, Depends(get_accounts)]
Me = Annotated[Identity, Depends(signed_in)]

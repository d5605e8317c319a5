"""JSON API: who the caller is (handy to check an API token)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.accounts.deps import Me

router = APIRouter(prefix="/api/v1", tags=["accounts"])


class MeOut(BaseModel):
    """The signed-in account."""

    id: int
    username: str
    role: str


@router.get("/me", response_model=MeOut, responses={401: {"description": "not signed in"}})
async def me(me: Me) -> MeOut:
    """The account behind the session cookie or API token (team mode; 401 otherwise)."""
    return MeOut(id=me.id, username=me.username, role=me.role)

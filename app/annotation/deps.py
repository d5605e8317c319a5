"""Dependencies of the annotation routers: the service, and who the rater is."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.annotation.service import AnnotationService
from app.errors import InvalidInput
from app.web.deps import SessionDep, SettingsDep
from app.web.pages import rater_of


def get_service(session: SessionDep, settings: SettingsDep) -> AnnotationService:
    """The annotation service bound to this request's session."""
    return AnnotationService(session, settings)


ServiceDep = Annotated[AnnotationService, Depends(get_service)]


def resolve_rater(request: Request, claimed: str | None = None) -> str | None:
    """Who is rating: the name a script gives, else the name this browser judged as last.

    The one place the queue learns its rater (accounts will decide it here)."""
    name = (claimed if claimed is not None else rater_of(request)) or ""
    name = name.strip()
    if len(name) > 64:
        raise InvalidInput("the rater name is at most 64 characters")
    return name or None

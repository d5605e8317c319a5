"""Dependencies of the annotation routers: the service, and who the rater is."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import TypeAdapter, ValidationError

from app.annotation.service import AnnotationService
from app.comparisons.schemas import RaterName
from app.errors import InvalidInput
from app.web.deps import SessionDep, SettingsDep
from app.web.pages import rater_of


def get_service(session: SessionDep, settings: SettingsDep) -> AnnotationService:
    """The annotation service bound to this request's session."""
    return AnnotationService(session, settings)


ServiceDep = Annotated[AnnotationService, Depends(get_service)]
_RATER: TypeAdapter[str] = TypeAdapter(RaterName)


def resolve_rater(request: Request, claimed: str | None = None) -> str | None:
    """Who is rating: the name a script or form gives, else the name this browser judged as
    last (None if neither). In team mode always the signed-in account: a claimed name is
    ignored, so nobody judges under another rater's name."""
    if hasattr(request.state, "account"):  # set by the access guard in team mode
        return rater_of(request)
    if claimed is None:
        remembered = rater_of(request)
        try:
            return _RATER.validate_python(remembered) if remembered else None
        except ValidationError:
            return None  # a cookie we cannot use: ask for the name again
    if not claimed.strip():
        return None
    try:
        return _RATER.validate_python(claimed)
    except ValidationError as exc:
        raise InvalidInput(f"rater name: {exc.errors()[0]['msg']}") from exc

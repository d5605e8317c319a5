"""The one app-wide check in team mode: the route's rule (accounts.rules) against the caller."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import HTTPException, Request, status

from app.accounts.limits import check_limits
from app.accounts.ownership import MISSING, owner_of
from app.accounts.rules import Access, rule_for
from app.db import utcnow
from app.identity.current import identify, unauthorized
from app.web.state import AppState

log = logging.getLogger(__name__)


async def authorize(request: Request) -> None:
    """App-wide dependency: let the request through or answer 401/303, 403 or 429."""
    state: AppState = request.app.state.playground
    signer = state.session_signer
    if signer is None:
        return  # local mode: no accounts
    route = request.scope.get("route")
    template = getattr(route, "path", "")
    rule = rule_for(request.method, template)
    if rule is None:
        # Fail closed: a new route is nobody's until accounts/rules.py says whose it is.
        log.error("no access rule for %s %s in app/accounts/rules.py", request.method, template)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this route has no access rule yet")
    async with state.sessions() as session:
        identity = await identify(request, session, signer)
        request.state.account = identity
        if rule.access is Access.PUBLIC:
            return
        if identity is None:
            raise sign_in_first(request)
        if not identity.via_token:
            refuse_cross_site_api_writes(request)
        if rule.access is Access.ADMIN and not identity.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only an admin may do this")
        if rule.access is Access.OWNER and not identity.is_admin:
            owner = await owner_of(session, request.path_params)
            if owner is not MISSING and owner != identity.id:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    "this conversation is not yours: only its owner (or an admin) may change it",
                )
        if rule.limited:
            await check_limits(session, identity.id, state.settings, utcnow())


def refuse_cross_site_api_writes(request: Request) -> None:
    """A cookie-signed-in API write must be JSON, which a cross-site form cannot send.

    Every JSON route already has require_json; this keeps a future API route that forgets it
    from being driven by another site with the user's cookie. Bearer calls carry no cookie,
    so they need neither this nor a CSRF token.
    """
    if (
        request.method not in ("GET", "HEAD", "OPTIONS")
        and request.url.path.startswith("/api/")
        and not request.headers.get("content-type", "").startswith("application/json")
    ):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json"
        )


def sign_in_first(request: Request) -> HTTPException:
    """401 for the API; for pages a redirect to the sign-in page (htmx: HX-Redirect)."""
    if request.url.path.startswith("/api/"):
        return unauthorized("sign in or send `Authorization: Bearer <token>` with an API token")
    # Back to the page after signing in; a form post cannot be replayed, so to the start page.
    target = request.url.path if request.method in ("GET", "HEAD") else "/"
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    location = "/login?next=" + quote(target, safe="/")
    if request.headers.get("HX-Request"):
        return HTTPException(
            status.HTTP_401_UNAUTHORIZED, "sign in first", headers={"HX-Redirect": location}
        )
    return HTTPException(status.HTTP_303_SEE_OTHER, "sign in first", headers={"Location": location})

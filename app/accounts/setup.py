"""Team mode's session signer from the settings (None in local mode)."""

from __future__ import annotations

import logging

from app.config import Settings
from app.identity.sessions import SessionSigner

log = logging.getLogger(__name__)


def session_signer(settings: Settings) -> SessionSigner | None:
    """The signer of sign-in cookies in team mode; production has a set secret (config checks)."""
    if settings.resolved_auth() != "team":
        return None
    if not settings.secret_key:
        log.warning(
            "team mode without PLAYGROUND_SECRET_KEY: a random key signs sessions, so every "
            "sign-in ends when the process restarts (and differs between replicas)"
        )
    return SessionSigner(
        settings.resolved_secret_key(),
        max_age_seconds=settings.session_hours * 3600,
        secure=settings.cookies_secure(),
    )

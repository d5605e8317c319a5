"""Why a token-lens action failed, in words a user can act on; both routers map them to 4xx."""

from __future__ import annotations

from app.errors import PlaygroundError


class LensError(PlaygroundError):
    """The lens cannot do what was asked (e.g. nothing to analyse)."""

    status_code = 422


class VocabularyMismatch(LensError):
    """The two models tokenize text differently, so token ids cannot be carried across."""

    status_code = 409

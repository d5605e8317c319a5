"""Why a token-lens action failed, in words a user can act on; both routers map them to 4xx/502."""

from __future__ import annotations

from app.errors import PlaygroundError


class LensError(PlaygroundError):
    """The lens cannot do what was asked (e.g. nothing to analyse)."""

    status_code = 422


class VocabularyMismatch(LensError):
    """The two models tokenize text differently, so token ids cannot be carried across."""

    status_code = 409


class ContextTooLong(LensError):
    """The context plus the answer do not fit in the base model's context window."""

    status_code = 422


class LensServerError(LensError):
    """A model server answered the lens with an error (the request was the lens's own)."""

    status_code = 502


class ServerUnavailable(LensServerError):
    """A model server could not be reached or timed out."""


class MalformedResponse(LensServerError):
    """A model server answered, but not in the shape vLLM uses."""

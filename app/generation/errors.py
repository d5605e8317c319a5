"""Why a model server could not do what was asked, in words a user can act on (502 or 422)."""

from __future__ import annotations

from app.errors import PlaygroundError


class ModelServerError(PlaygroundError):
    """A model server answered with an error, or not at all; the message is user-facing."""

    status_code = 502

    def __init__(self, message: str) -> None:
        # NUL fits in no database text column, and error messages are stored.
        super().__init__(message.replace("\x00", "\ufffd"))


class ServerUnavailable(ModelServerError):
    """A model server could not be reached or timed out."""


class MalformedResponse(ModelServerError):
    """A model server answered, but not in the shape vLLM uses."""


class ContextTooLong(ModelServerError):
    """The prompt does not fit in the model's context window."""

    status_code = 422

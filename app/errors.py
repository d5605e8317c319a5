"""Domain errors with a user-facing message; both routers turn them into 4xx responses."""

from __future__ import annotations


class PlaygroundError(Exception):
    """Base of errors the user caused or can act on."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(PlaygroundError):
    """The conversation, turn or model does not exist."""

    status_code = 404


class Conflict(PlaygroundError):
    """The request is valid but not now (e.g. voting before both answers are complete)."""

    status_code = 409


class InvalidInput(PlaygroundError):
    """The request is malformed or out of range."""

    status_code = 422

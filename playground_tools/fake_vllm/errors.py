"""Errors the fake answers with: vLLM's JSON error body, and the injected mid-stream failure."""

from __future__ import annotations

import re
from http import HTTPStatus

from playground_tools.fake_vllm.config import JSONObject


class FakeAPIError(Exception):
    """An error answered as vLLM's JSON error body."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param

    def body(self) -> JSONObject:
        """vLLM's ErrorResponse shape."""
        return {
            "object": "error",
            "message": self.message,
            "type": _error_type(self.status),
            "param": self.param,
            "code": self.status,
        }


class InjectedFailure(RuntimeError):
    """Raised mid-stream on purpose (fail_after_tokens) so the connection is cut."""


def _error_type(status: int) -> str:
    """vLLM-style error type for a status: 400 -> BadRequestError, 404 -> NotFoundError."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "InternalServerError"
    name = re.sub(r"[^A-Za-z]", "", phrase.title())
    # "Internal Server Error" already ends in Error.
    return name if name.endswith("Error") else name + "Error"
